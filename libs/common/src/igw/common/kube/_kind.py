"""What an `Informer` lists and watches: one kind, from the core API group or a custom resource.

A `Kind` picks the official client's list function (which, called with `watch=True`, is also the
watch): `CoreV1Api.list_namespaced_<kind>` / `list_<kind>_for_all_namespaces` / `list_<kind>` for
core kinds, `CustomObjectsApi.list_namespaced_custom_object` / `list_cluster_custom_object` for
custom resources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kubernetes

__all__ = ["CONFIG_MAPS", "PODS", "Kind", "ListCall", "core_kind", "custom_kind"]

ListCall = tuple[Callable[..., Any], tuple[str, ...]]
"""A bound list function of the official client and the positional arguments it takes."""


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of object; build it with `core_kind` or `custom_kind`."""

    group: str  # "" for the core API group
    version: str
    plural: str
    namespaced: bool = True
    core_name: str = ""  # CoreV1Api's snake_case name ("config_map"); "" for a custom resource

    @property
    def name(self) -> str:
        """How logs name the kind: `v1/configmaps`, `inferencepools.inference.networking.k8s.io`."""
        return f"{self.plural}.{self.group}" if self.group else f"{self.version}/{self.plural}"

    def list_call(self, api_client: kubernetes.client.ApiClient, namespace: str | None) -> ListCall:
        """The list function for objects in `namespace` (`None`: all namespaces, or cluster-wide).

        Raises `ValueError` for a namespace on a cluster-scoped kind or a core kind the client
        does not know.
        """
        if namespace is not None and not self.namespaced:
            raise ValueError(f"{self.name} is cluster-scoped; it has no namespace {namespace!r}")
        if not self.core_name:
            custom = kubernetes.client.CustomObjectsApi(api_client)
            if namespace is None:
                return custom.list_cluster_custom_object, (self.group, self.version, self.plural)
            return custom.list_namespaced_custom_object, (
                self.group,
                self.version,
                namespace,
                self.plural,
            )
        core = kubernetes.client.CoreV1Api(api_client)
        args: tuple[str, ...]
        if not self.namespaced:
            function_name, args = f"list_{self.core_name}", ()
        elif namespace is None:
            function_name, args = f"list_{self.core_name}_for_all_namespaces", ()
        else:
            function_name, args = f"list_namespaced_{self.core_name}", (namespace,)
        function = getattr(core, function_name, None)
        if function is None:
            raise ValueError(f"the Kubernetes client has no CoreV1Api.{function_name}")
        return function, args


def core_kind(core_name: str, *, namespaced: bool = True) -> Kind:
    """A core/v1 kind by the client's snake_case name: `core_kind("pod")`, `("config_map")`."""
    return Kind("", "v1", core_name.replace("_", "") + "s", namespaced, core_name)


def custom_kind(group: str, version: str, plural: str, *, namespaced: bool = True) -> Kind:
    """A custom resource: `custom_kind("inference.networking.k8s.io", "v1", "inferencepools")`."""
    return Kind(group, version, plural, namespaced)


CONFIG_MAPS = core_kind("config_map")
PODS = core_kind("pod")
