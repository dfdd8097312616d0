"""Kubernetes objects as the API server sends them (raw JSON dicts), built by code for tests:
InferencePools (v1 and v1alpha2) and Pods, with what discovery reads and nothing else."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["inference_pool", "legacy_inference_pool", "pod"]

_DELETING = "2026-01-01T00:00:00Z"


def _meta(name: str, namespace: str, deleting: bool, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, **extra}
    if deleting:
        meta["deletionTimestamp"] = _DELETING
    return meta


def inference_pool(
    name: str,
    selector: Mapping[str, str],
    ports: Sequence[int],
    *,
    namespace: str = "ns",
    app_protocol: str | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    """An `inference.networking.k8s.io/v1` InferencePool picked by the EPP Service `epp`."""
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(selector)},
        "targetPorts": [{"number": port} for port in ports],
        "endpointPickerRef": {"name": "epp", "port": {"number": 9002}},
    }
    if app_protocol is not None:
        spec["appProtocol"] = app_protocol
    return {
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": _meta(name, namespace, deleting),
        "spec": spec,
    }


def legacy_inference_pool(
    name: str, selector: Mapping[str, str], port: int, *, namespace: str = "ns"
) -> dict[str, Any]:
    """An `inference.networking.x-k8s.io/v1alpha2` InferencePool (upstream v0.x)."""
    return {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferencePool",
        "metadata": _meta(name, namespace, False),
        "spec": {
            "selector": dict(selector),
            "targetPortNumber": port,
            "extensionRef": {"name": "epp"},
        },
    }


def pod(
    name: str,
    ip: str,
    labels: Mapping[str, str],
    *,
    namespace: str = "ns",
    ready: bool = True,
    deleting: bool = False,
    active_ports: str | None = None,
    conditions: bool = True,
) -> dict[str, Any]:
    """A Pod with an IP (empty: none yet), a `Ready` condition, optional active-ports."""
    annotations = {}
    if active_ports is not None:
        annotations["inference.networking.k8s.io/active-ports"] = active_ports
    status: dict[str, Any] = {"phase": "Running"}
    if ip:
        status["podIP"] = ip
    if conditions:
        status["conditions"] = [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True" if ready else "False"},
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(name, namespace, deleting, labels=dict(labels), annotations=annotations),
        "spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai"}]},
        "status": status,
    }
