"""`kv-cache-utilization-scorer`: prefers free KV cache; score = `1 - KVCacheUsagePercent`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.framework.params import ParameterlessPlugin

__all__ = ["KvCacheUtilizationScorer"]


class KvCacheUtilizationScorer(ParameterlessPlugin):
    type_name: ClassVar[str] = "kv-cache-utilization-scorer"
    category: ClassVar[Literal["distribution", "affinity"]] = "distribution"

    def score(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,  # noqa: ARG002 - protocol
        endpoints: Sequence[EndpointState],
    ) -> Sequence[float]:
        # A usage above 1.0 (a misreporting server) gives a negative score the framework clamps.
        return [1.0 - e.metrics.kv_cache_usage for e in endpoints]
