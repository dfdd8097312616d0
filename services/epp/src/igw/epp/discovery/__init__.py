"""Where the EPP's endpoints come from: a static YAML file, or Kubernetes (an InferencePool and
its pods, or standalone pods by label).

A source's only duty is to call `reconcile(endpoints)` on the datastore with the complete current
list (level-triggered), and to say whether the pool is ready to serve.
"""

from igw.epp.discovery.kubernetes import KubernetesDiscovery, ObjectStore
from igw.epp.discovery.options import PoolOptions, deployment_name
from igw.epp.discovery.pool import (
    DEFAULT_POOL_GROUP,
    LEGACY_POOL_GROUP,
    MAX_TARGET_PORTS,
    PoolSpec,
    pod_endpoints,
    pool_from_object,
)
from igw.epp.discovery.pool_state import PoolState
from igw.epp.discovery.static import (
    Reconciler,
    StaticDiscovery,
    StaticDiscoveryError,
    parse_endpoints_file,
)

__all__ = [
    "DEFAULT_POOL_GROUP",
    "LEGACY_POOL_GROUP",
    "MAX_TARGET_PORTS",
    "KubernetesDiscovery",
    "ObjectStore",
    "PoolOptions",
    "PoolSpec",
    "PoolState",
    "Reconciler",
    "StaticDiscovery",
    "StaticDiscoveryError",
    "deployment_name",
    "parse_endpoints_file",
    "pod_endpoints",
    "pool_from_object",
]
