"""Kubernetes for igw's services: the API client, and one list+watch `Informer` per kind.

`load_kube_client()` finds the API (in-cluster or kubeconfig); an `Informer` keeps a consumer in
step with one kind of object (core or custom, one namespace or all) through level-triggered
`on_change(key, obj | None)` callbacks, surviving expired watches, failing or restarting API
servers. The BBR's adapter ConfigMaps and the EPP's pool and pods are watched with it. A
`LeaderElector` takes and keeps a Lease (client-go's leader election) for active-passive replicas.
"""

from igw.common.kube._kind import CONFIG_MAPS, PODS, Kind, core_kind, custom_kind
from igw.common.kube.client import KubeClientConfigError, load_kube_client, namespace_from_env
from igw.common.kube.informer import Accept, Informer, OnChange, OnSynced, Timings, on_loop
from igw.common.kube.leader import Clock, LeaderElector, LeaseTimings

__all__ = [
    "CONFIG_MAPS",
    "PODS",
    "Accept",
    "Clock",
    "Informer",
    "Kind",
    "KubeClientConfigError",
    "LeaderElector",
    "LeaseTimings",
    "OnChange",
    "OnSynced",
    "Timings",
    "core_kind",
    "custom_kind",
    "load_kube_client",
    "namespace_from_env",
    "on_loop",
]
