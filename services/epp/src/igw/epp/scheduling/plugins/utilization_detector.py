"""`utilization-detector`: a saturation detector from scraped queue depth and KV-cache use, and a
filter that steers away from the endpoints it finds saturated.

Per endpoint, saturation is `max(queue / queueDepthThreshold, kv / kvCacheUtilThreshold)`, or 1.0
when its metrics are older than `metricsStalenessThreshold`; the pool's is the average over the
candidates (none -> 1.0). As a filter it drops stale endpoints and those with
`queue >= queueDepthThreshold x (1 + headroom)` or `kv >= kvCacheUtilThreshold x (1 + headroom)`;
when that would drop every endpoint it keeps them all (shedding is admission's job).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Self

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.params import Params, decode_params
from igw.epp.units import parse_duration

__all__ = ["UtilizationDetector", "UtilizationDetectorParams"]


class UtilizationDetectorParams(Params, frozen=True):
    queue_depth_threshold: int = 5
    kv_cache_util_threshold: float = 0.8
    metrics_staleness_threshold: str | float = "200ms"
    headroom: float = 0.0


class UtilizationDetector:
    type_name: ClassVar[str] = "utilization-detector"

    def __init__(
        self,
        name: str = type_name,
        *,
        clock: Callable[[], float],
        queue_depth_threshold: int = 5,
        kv_cache_util_threshold: float = 0.8,
        staleness_threshold: float = 0.2,
        headroom: float = 0.0,
    ) -> None:
        if queue_depth_threshold <= 0 or kv_cache_util_threshold <= 0 or headroom < 0:
            raise ValueError(
                "queueDepthThreshold and kvCacheUtilThreshold must be positive, "
                "headroom non-negative"
            )
        self.name = name
        self.clock = clock
        self.queue_threshold = queue_depth_threshold
        self.kv_threshold = kv_cache_util_threshold
        self.staleness = staleness_threshold
        self._queue_limit = queue_depth_threshold * (1 + headroom)
        self._kv_limit = kv_cache_util_threshold * (1 + headroom)

    @classmethod
    def from_config(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> Self:
        p = decode_params(params, UtilizationDetectorParams)
        return cls(
            name, clock=handle.clock, queue_depth_threshold=p.queue_depth_threshold,
            kv_cache_util_threshold=p.kv_cache_util_threshold,
            staleness_threshold=parse_duration(p.metrics_staleness_threshold), headroom=p.headroom,
        )  # fmt: skip

    def saturation(self, endpoints: Sequence[EndpointState]) -> float:
        if not endpoints:
            return 1.0
        now = self.clock()
        total = 0.0
        for e in endpoints:
            if e.age(now) > self.staleness:
                total += 1.0
            else:
                m = e.metrics
                total += max(m.waiting / self.queue_threshold, m.kv_cache_usage / self.kv_threshold)
        return total / len(endpoints)

    def filter(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,  # noqa: ARG002 - protocol
        endpoints: Sequence[EndpointState],
    ) -> Sequence[EndpointState]:
        now = self.clock()
        queue_limit, kv_limit, staleness = self._queue_limit, self._kv_limit, self.staleness
        kept = [
            e
            for e in endpoints
            if e.age(now) <= staleness
            and e.metrics.waiting < queue_limit
            and e.metrics.kv_cache_usage < kv_limit
        ]
        return kept or endpoints
