"""`kv-cache-utilization-scorer`: prefers free KV cache; score = `1 - KVCacheUsagePercent`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.scheduling.cycle_state import CycleState
from igw.epp.scheduling.handle import PluginHandle
from igw.epp.scheduling.plugins._params import NoParams, decode_params

__all__ = ["KvCacheUtilizationScorer"]


class KvCacheUtilizationScorer:
    type_name: ClassVar[str] = "kv-cache-utilization-scorer"
    category: ClassVar[Literal["distribution", "affinity"]] = "distribution"

    def __init__(self, name: str = type_name) -> None:
        self.name = name

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: PluginHandle,  # noqa: ARG003 - protocol
    ) -> Self:
        decode_params(params, NoParams)
        return cls(name)

    def score(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,  # noqa: ARG002 - protocol
        endpoints: Sequence[EndpointState],
    ) -> Sequence[float]:
        # A usage above 1.0 (a misreporting server) gives a negative score the framework clamps.
        return [1.0 - e.metrics.kv_cache_usage for e in endpoints]
