"""Eviction of in-flight sheddable requests when a higher band starves (igw's wiring of
upstream's experimental, unwired `eviction-sheddable-filter` + `eviction-priority-then-time-
ordering`).

Every request flow control dispatches with a priority below 0 (sheddable, upstream's filter) is
tracked until its response ends (`InFlight.finished`, from the request-completion hook). When
the pool is saturated and the head of a waiting band has waited longer than
`starvation_threshold_s`, the dispatcher evicts one tracked request of a lower priority than
that band, chosen as upstream orders victims: lowest priority first, then the most recently
dispatched (it has done the least work). At most one eviction per `min_interval_s`, so the
pool's saturation can reflect the freed capacity before the next one.

Evicting resolves the request's `signal` future with `FlowControlEvictedError`; the ext_proc
servicer races it against Envoy's next message and answers with an ImmediateResponse 429
`request evicted by flow control` mid-stream, after which the stream ends and the completion
hook runs as for any request (in-flight counts go down). The victim leaves the tracking at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from igw.common.errors import InferenceError
from igw.epp.endpoints import InferenceRequest
from igw.epp.flowcontrol.outcomes import FlowControlEvictedError

__all__ = ["EvictionConfig", "InFlight"]


@dataclass(frozen=True, slots=True)
class EvictionConfig:
    starvation_threshold_s: float = 1.0
    min_interval_s: float = 0.1


@dataclass(slots=True, eq=False)
class _Tracked:
    request: InferenceRequest
    dispatched_at: float
    signal: asyncio.Future[InferenceError]


class InFlight:
    """The dispatched sheddable requests, by request object (identity), until they end."""

    def __init__(self, config: EvictionConfig) -> None:
        self.config = config
        self._tracked: dict[int, _Tracked] = {}
        self.last_eviction = float("-inf")
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._tracked)

    def dispatched(self, request: InferenceRequest, now: float) -> None:
        if request.priority < 0:
            future: asyncio.Future[InferenceError] = asyncio.get_running_loop().create_future()
            self._tracked[id(request)] = _Tracked(request, now, future)

    def signal(self, request: InferenceRequest) -> asyncio.Future[InferenceError] | None:
        tracked = self._tracked.get(id(request))
        return None if tracked is None else tracked.signal

    def finished(self, request: InferenceRequest) -> None:
        tracked = self._tracked.pop(id(request), None)
        if tracked is not None and not tracked.signal.done():
            tracked.signal.cancel()

    def evict_below(self, priority: int, now: float) -> InferenceRequest | None:
        """Evicts one request of a lower priority (module docstring); None if none or too soon."""
        if now - self.last_eviction < self.config.min_interval_s:
            return None
        victims = [t for t in self._tracked.values() if t.request.priority < priority]
        if not victims:
            return None
        victim = min(victims, key=lambda t: (t.request.priority, -t.dispatched_at))
        del self._tracked[id(victim.request)]
        victim.signal.set_result(FlowControlEvictedError())
        self.last_eviction = now
        self.evicted += 1
        return victim.request
