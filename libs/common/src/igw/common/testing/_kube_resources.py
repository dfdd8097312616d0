"""The resource types the fake API server knows, and the discovery documents built from them.

One `ResourceType` row per served group/version/resource says how kube-apiserver's registry treats
it: whether lists carry each item's `kind` (custom resources yes, built-in types no), whether a PUT
without `metadata.resourceVersion` is allowed, whether a PUT may create, what a DELETE answers
with, whether `metadata.generation` is kept, which `status` subresource exists and which extra
fieldSelector labels apply. `DEFAULT_RESOURCES` lists what igw's controllers use; a test passes
its own table to `FakeKubeApi` to add kinds or to leave a CRD out ("not installed").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_RESOURCES",
    "STORED_VERBS",
    "ResourceTable",
    "ResourceType",
    "custom_resource",
    "discovery",
]

STORED_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")
"""What the fake implements for stored kinds (no `deletecollection`)."""

_VERSION = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")


@dataclass(frozen=True, slots=True)
class ResourceType:
    group: str
    """API group; "" for the core (legacy `/api/v1`) group."""
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...] = STORED_VERBS
    builtin: bool = True
    """A built-in type: list items carry no `kind`/`apiVersion` (custom resources' do)."""
    unconditional_update: bool = True
    """A PUT without `metadata.resourceVersion` is accepted (custom resources refuse it)."""
    create_on_update: bool = False
    """A PUT of a missing object creates it (Leases), instead of 404."""
    return_deleted_object: bool = False
    """DELETE answers with the deleted object (Pods); otherwise with a `Success` Status."""
    generation: bool = False
    """`metadata.generation` starts at 1 and grows when anything but metadata/status changes."""
    status_subresource: bool = False
    """`.../status` exists; writes to the main resource keep the stored status."""
    field_labels: tuple[str, ...] = ()
    """fieldSelector labels beyond `metadata.name` and `metadata.namespace`."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`leases.coordination.k8s.io`: how error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @property
    def stored(self) -> bool:
        return "get" in self.verbs


def custom_resource(
    group: str, version: str, kind: str, plural: str, *, namespaced: bool = True
) -> ResourceType:
    """A CRD-served type with a status subresource, as the Gateway API Inference Extension's."""
    return ResourceType(
        group,
        version,
        kind,
        plural,
        namespaced,
        builtin=False,
        unconditional_update=False,
        generation=True,
        status_subresource=True,
    )


_POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)

DEFAULT_RESOURCES = (
    ResourceType(
        "",
        "v1",
        "Pod",
        "pods",
        True,
        return_deleted_object=True,
        generation=True,
        status_subresource=True,
        field_labels=_POD_FIELDS,
    ),
    ResourceType("", "v1", "ConfigMap", "configmaps", True),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True, create_on_update=True),
    custom_resource("inference.networking.k8s.io", "v1", "InferencePool", "inferencepools"),
    custom_resource("inference.networking.x-k8s.io", "v1alpha2", "InferencePool", "inferencepools"),
    custom_resource(
        "inference.networking.x-k8s.io", "v1alpha2", "InferenceObjective", "inferenceobjectives"
    ),
    custom_resource(
        "inference.networking.x-k8s.io",
        "v1alpha2",
        "InferenceModelRewrite",
        "inferencemodelrewrites",
    ),
    ResourceType("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", False, ("create",)),
    ResourceType(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        False,
        ("create",),
    ),
)


class ResourceTable:
    """Lookups over the served resource types; duplicate rows raise."""

    def __init__(self, resources: Iterable[ResourceType]) -> None:
        self.resources = tuple(resources)
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        for resource in self.resources:
            path_key = (resource.group, resource.version, resource.plural)
            kind_key = (resource.api_version, resource.kind)
            if path_key in self._by_path or kind_key in self._by_kind:
                raise ValueError(f"{resource.api_version} {resource.kind} is listed twice")
            self._by_path[path_key] = resource
            self._by_kind[kind_key] = resource

    def at(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def of(self, api_version: str, kind: str) -> ResourceType:
        try:
            return self._by_kind[(api_version, kind)]
        except KeyError:
            raise KeyError(f"FakeKubeApi does not serve {api_version} {kind}") from None

    def versions(self, group: str) -> list[str]:
        """The group's versions, preferred first (kube-aware order: v1 > v1beta1 > v1alpha2)."""
        found = {resource.version for resource in self.resources if resource.group == group}
        return sorted(found, key=_version_priority, reverse=True)

    def groups(self) -> list[str]:
        """Named groups in the order their first row appears (core excluded)."""
        return list(dict.fromkeys(r.group for r in self.resources if r.group))


def _version_priority(version: str) -> tuple[int, int, int, str]:
    match = _VERSION.fullmatch(version)
    if match is None:
        return (-1, 0, 0, version)
    stage = {None: 2, "beta": 1, "alpha": 0}[match.group(2)]
    return (stage, int(match.group(1)), int(match.group(3) or 0), version)


def discovery(table: ResourceTable, path: str, server_address: str) -> dict[str, Any] | None:
    """The discovery document a GET of `path` answers, or None when `path` is not one."""
    match [part for part in path.split("/") if part]:
        case ["version"]:
            document: dict[str, Any] | None = version_info()
        case ["api"]:
            document = api_versions(server_address)
        case ["apis"]:
            document = api_group_list(table)
        case ["apis", group] if group in table.groups():
            document = {"kind": "APIGroup", "apiVersion": "v1", **api_group(table, group)}
        case ["api", "v1"]:
            document = api_resource_list(table, "", "v1")
        case ["apis", group, version]:
            document = api_resource_list(table, group, version)
        case _:
            document = None
    return document


def version_info() -> dict[str, str]:
    """`GET /version`: a VersionInfo."""
    return {
        "major": "1",
        "minor": "35",
        "emulationMajor": "1",
        "emulationMinor": "35",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "34",
        "gitVersion": "v1.35.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """`GET /api`: the legacy group's APIVersions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group(table: ResourceTable, group: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in table.versions(group)]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def api_group_list(table: ResourceTable) -> dict[str, Any]:
    """`GET /apis`: every named group with its versions."""
    groups = [api_group(table, group) for group in table.groups()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(table: ResourceTable, group: str, version: str) -> dict[str, Any] | None:
    """`GET /api/v1` or `/apis/{group}/{version}`; None when the group/version is not served."""
    resources = [r for r in table.resources if r.group == group and r.version == version]
    if not resources:
        return None
    entries: list[dict[str, Any]] = []
    for resource in resources:
        entries.append(_api_resource(resource.plural, resource, list(resource.verbs)))
        if resource.status_subresource:
            entries.append(
                _api_resource(f"{resource.plural}/status", resource, ["get", "patch", "update"])
            )
    group_version = resource.api_version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }


def _api_resource(name: str, resource: ResourceType, verbs: list[str]) -> dict[str, Any]:
    singular = resource.kind.lower() if "/" not in name else ""
    return {
        "name": name,
        "singularName": singular,
        "namespaced": resource.namespaced,
        "kind": resource.kind,
        "verbs": verbs,
    }
