"""Where a Kubernetes EPP finds its pool: an InferencePool by name, or a label selector and ports
(standalone mode), as upstream's `--pool-*` and `--endpoint-*` flags say."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from igw.epp.discovery.pool import DEFAULT_POOL_GROUP, PoolSpec

__all__ = ["PoolOptions", "deployment_name"]

_DEPLOYMENT_POD = re.compile(r"^(.+)-[a-z0-9]+-[a-z0-9]+$")


@dataclass(frozen=True, slots=True)
class PoolOptions:
    name: str
    namespace: str
    group: str = DEFAULT_POOL_GROUP
    selector: Mapping[str, str] | None = None
    """Standalone mode (no InferencePool): the model-server pods' labels."""
    target_ports: tuple[int, ...] = field(default=())
    """Standalone mode: their serving ports."""
    metrics_port: int | None = None
    """Upstream's deprecated `--model-server-metrics-port` (single-port pools only)."""

    @property
    def standalone(self) -> PoolSpec | None:
        """The fixed pool of standalone mode; None when an InferencePool names it."""
        if self.selector is None:
            return None
        return PoolSpec(self.name, self.namespace, dict(self.selector), self.target_ports)


def deployment_name(pod_name: str) -> str:
    """The Deployment a pod belongs to (`epp-7d9f8b6c4d-x2k9p` -> `epp`), as upstream names a
    standalone EPP's pool; raises `ValueError` when the name has no such suffix."""
    match = _DEPLOYMENT_POD.match(pod_name)
    if match is None:
        raise ValueError(
            f"cannot tell the Deployment from POD_NAME {pod_name!r} (set POD_NAME to the pod's "
            "name with the downward API)"
        )
    return match[1]
