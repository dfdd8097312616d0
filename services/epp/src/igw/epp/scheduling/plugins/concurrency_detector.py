"""`concurrency-detector`: saturation from the requests (or estimated tokens) the EPP itself has
in flight per endpoint, and a filter that keeps endpoints below their limit.

Each endpoint's limit is `maxConcurrency` requests (`concurrencyMode: requests`) or
`maxTokenConcurrency` tokens (`tokens`); as a filter it keeps endpoints whose in-flight count is
below `limit x (1 + headroom)`, or all of them when none is. Pool saturation is total in flight
over total limit across the candidates (none -> 1.0). In-flight counts are learnt from PreRequest
(the primary target) and response completion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.params import Params, decode_params
from igw.epp.scheduling.plugins._inflight import InFlightHooks, InFlightTracker

__all__ = ["ConcurrencyDetector", "ConcurrencyDetectorParams"]


class ConcurrencyDetectorParams(Params, frozen=True):
    concurrency_mode: Literal["requests", "tokens"] = "requests"
    max_concurrency: int = 100
    max_token_concurrency: int = 1_000_000
    headroom: float = 0.0


class ConcurrencyDetector(InFlightHooks):
    type_name: ClassVar[str] = "concurrency-detector"

    def __init__(
        self,
        name: str = type_name,
        *,
        mode: Literal["requests", "tokens"] = "requests",
        max_concurrency: int = 100,
        max_token_concurrency: int = 1_000_000,
        headroom: float = 0.0,
    ) -> None:
        if max_concurrency <= 0 or max_token_concurrency <= 0 or headroom < 0:
            raise ValueError(
                "maxConcurrency and maxTokenConcurrency must be positive, headroom non-negative"
            )
        self.name = name
        self.mode = mode
        self.capacity = max_concurrency if mode == "requests" else max_token_concurrency
        self._limit = self.capacity * (1 + headroom)
        self.tracker = InFlightTracker()

    @classmethod
    def from_config(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> Self:  # noqa: ARG003 - protocol
        p = decode_params(params, ConcurrencyDetectorParams)
        return cls(
            name, mode=p.concurrency_mode, max_concurrency=p.max_concurrency,
            max_token_concurrency=p.max_token_concurrency, headroom=p.headroom,
        )  # fmt: skip

    def _in_flight(self, endpoint: str) -> int:
        load = self.tracker.load(endpoint)
        return load.requests if self.mode == "requests" else load.tokens

    def saturation(self, endpoints: Sequence[EndpointState]) -> float:
        if not endpoints:
            return 1.0
        in_flight = sum(self._in_flight(e.endpoint.name) for e in endpoints)
        return in_flight / (self.capacity * len(endpoints))

    def filter(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,  # noqa: ARG002 - protocol
        endpoints: Sequence[EndpointState],
    ) -> Sequence[EndpointState]:
        kept = [e for e in endpoints if self._in_flight(e.endpoint.name) < self._limit]
        return kept or endpoints
