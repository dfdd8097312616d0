"""An InferencePool and its pods, read from the raw objects the API server sends, as endpoints.

What upstream's datastore does (v1.5.0, `pkg/epp/datastore/datastore.go`, `pkg/epp/util/pod`):

* the pool: `inference.networking.k8s.io/v1` (`spec.selector.matchLabels`, `spec.targetPorts[]
  .number`, 1-8 ports, `spec.appProtocol`, `spec.endpointPickerRef`), or the older
  `inference.networking.x-k8s.io/v1alpha2` (`spec.selector` as a plain map, one
  `spec.targetPortNumber`, `spec.extensionRef`); a pool being deleted counts as gone;
* a pod is served iff its labels match the selector (checked here: never trust a server to have
  applied one), it has no deletion timestamp, its `Ready` condition is `True`, and it has an IP;
* one endpoint per target port, named `<pod>-rank-<i>` where `i` is the port's index in
  `targetPorts` (also when other ports are inactive); the annotation
  `inference.networking.k8s.io/active-ports` (a comma list of port numbers) restricts which are
  served, entries that are not target ports ignored;
* the metrics port is the serving port, unless the pool has exactly one target port and the
  deprecated `--model-server-metrics-port` is set.

Bad objects (wrong types, missing fields) are not errors here: a pool that cannot be read is
`None` (treated as absent, logged by the caller), a pod that cannot be read has no endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from igw.epp.endpoints import Endpoint

__all__ = [
    "ACTIVE_PORTS_ANNOTATION",
    "DEFAULT_POOL_GROUP",
    "LEGACY_POOL_GROUP",
    "MAX_TARGET_PORTS",
    "SUPPORTED_PROTOCOLS",
    "PoolSpec",
    "pod_endpoints",
    "pod_is_ready",
    "pool_from_object",
]

DEFAULT_POOL_GROUP = "inference.networking.k8s.io"
LEGACY_POOL_GROUP = "inference.networking.x-k8s.io"
ACTIVE_PORTS_ANNOTATION = "inference.networking.k8s.io/active-ports"
SUPPORTED_PROTOCOLS = ("http",)
"""The pool `appProtocol`s the EPP's parsers speak (`kubernetes.io/h2c` needs a gRPC parser)."""
MAX_TARGET_PORTS = 8


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """What the EPP needs of a pool: which pods, which ports, which protocol."""

    name: str
    namespace: str
    selector: Mapping[str, str]
    target_ports: tuple[int, ...]
    app_protocol: str = "http"
    picker: Mapping[str, Any] = field(default_factory=dict)
    """`endpointPickerRef` (v1) or `extensionRef` (v1alpha2), as written; informative."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.selector.items())


def _str_map(value: object) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return None
    return dict(value)


def _port(value: object) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 65535
    return value if ok and isinstance(value, int) else None


def _v1_ports(spec: Mapping[str, Any]) -> list[int | None]:
    ports = spec.get("targetPorts")
    if not isinstance(ports, list):
        return [None]
    return [_port(p.get("number")) if isinstance(p, Mapping) else None for p in ports]


def pool_from_object(obj: Mapping[str, Any]) -> PoolSpec | None:
    """The pool an InferencePool object describes; None when it cannot be read or is being
    deleted."""
    meta = obj.get("metadata")
    spec = obj.get("spec")
    if not isinstance(meta, Mapping) or not isinstance(spec, Mapping):
        return None
    if meta.get("deletionTimestamp"):
        return None
    legacy = str(obj.get("apiVersion", "")).startswith(LEGACY_POOL_GROUP + "/")
    if legacy:
        selector = _str_map(spec.get("selector"))
        ports = [_port(spec.get("targetPortNumber"))]
        picker = spec.get("extensionRef")
    else:
        raw_selector = spec.get("selector")
        matched = raw_selector.get("matchLabels") if isinstance(raw_selector, Mapping) else None
        selector = _str_map(matched)
        ports = _v1_ports(spec)
        picker = spec.get("endpointPickerRef")
    unique = tuple(dict.fromkeys(p for p in ports if p is not None))
    if (
        selector is None
        or not unique
        or len(unique) != len(ports)
        or len(unique) > MAX_TARGET_PORTS
    ):
        return None
    protocol = spec.get("appProtocol") or "http"
    return PoolSpec(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        selector=selector,
        target_ports=unique,
        app_protocol=protocol if isinstance(protocol, str) else "http",
        picker=dict(picker) if isinstance(picker, Mapping) else {},
    )


def pod_is_ready(pod: Mapping[str, Any]) -> bool:
    """Not being deleted, and the `Ready` condition is `True` (upstream's `IsPodReady`)."""
    meta = pod.get("metadata")
    if not isinstance(meta, Mapping) or meta.get("deletionTimestamp"):
        return False
    status = pod.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    for condition in conditions if isinstance(conditions, list) else ():
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _active_ports(annotations: Mapping[str, Any], target_ports: Sequence[int]) -> set[int]:
    text = annotations.get(ACTIVE_PORTS_ANNOTATION)
    if not isinstance(text, str):
        return set(target_ports)
    active = set()
    for item in text.split(","):
        number = item.strip()
        if number.isdigit() and int(number) in target_ports:
            active.add(int(number))
    return active


def pod_endpoints(
    pod: Mapping[str, Any], pool: PoolSpec, *, metrics_port: int | None = None
) -> list[Endpoint]:
    """The endpoints one pod serves for `pool`; none when it is not ready or does not match."""
    meta = pod.get("metadata")
    status = pod.get("status")
    if not isinstance(meta, Mapping) or not isinstance(status, Mapping):
        return []
    labels = _str_map(meta.get("labels") or {})
    ip = status.get("podIP")
    name = meta.get("name")
    if labels is None or not isinstance(ip, str) or not ip or not isinstance(name, str):
        return []
    if not pool.matches(labels) or not pod_is_ready(pod):
        return []
    annotations = meta.get("annotations") or {}
    active = _active_ports(
        annotations if isinstance(annotations, Mapping) else {}, pool.target_ports
    )
    namespace = str(meta.get("namespace", ""))
    metrics = metrics_port if len(pool.target_ports) == 1 and metrics_port else None
    return [
        Endpoint(f"{name}-rank-{rank}", ip, port, name, rank, labels, metrics, namespace)
        for rank, port in enumerate(pool.target_ports)
        if port in active
    ]
