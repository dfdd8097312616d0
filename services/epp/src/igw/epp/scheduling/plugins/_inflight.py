"""Per-endpoint accounting of requests sent and not yet complete, shared by the plugins that
learn load from the request path rather than from scraped metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from igw.epp.endpoints import Endpoint, InferenceRequest
from igw.epp.scheduling.attributes import InFlightLoad

if TYPE_CHECKING:
    from igw.epp.framework.cycle_state import CycleState
    from igw.epp.framework.results import SchedulingResult

__all__ = ["IDLE", "InFlightHooks", "InFlightObserver", "InFlightTracker", "estimate_tokens"]

IDLE = InFlightLoad(0, 0)

# Upstream's estimate: input tokens ~ bytes / 4, plus 1.5x that again for the output.
_TOKENS_PER_BYTE = 0.25 * (1 + 1.5)


def estimate_tokens(request: InferenceRequest) -> int:
    return int(request.size_bytes * _TOKENS_PER_BYTE)


class InFlightObserver(Protocol):
    """Told of the starts and finishes this process counts (`igw.epp.workers` shares them)."""

    def started(self, request_id: str, endpoint: str, tokens: int) -> None: ...

    def finished(self, request_id: str) -> None: ...


class InFlightTracker:
    """Request id -> where it went; endpoint name -> its load snapshot (swapped, never mutated).

    `observer` hears of starts and finishes from the request path (`InFlightHooks`), not of the
    calls to `start`/`finish` themselves, which is how other processes' updates are applied.
    """

    def __init__(self) -> None:
        self.loads: dict[str, InFlightLoad] = {}
        self._requests: dict[str, tuple[str, int]] = {}
        self.observer: InFlightObserver | None = None

    def load(self, endpoint: str) -> InFlightLoad:
        return self.loads.get(endpoint, IDLE)

    def start(self, request_id: str, endpoint: str, tokens: int) -> None:
        """Counts a request as in flight; a request id already counted is moved, not doubled."""
        self.finish(request_id)
        self._requests[request_id] = (endpoint, tokens)
        current = self.load(endpoint)
        self.loads[endpoint] = InFlightLoad(current.requests + 1, current.tokens + tokens)

    def finish(self, request_id: str) -> None:
        """Stops counting the request; unknown ids (already finished) are ignored."""
        entry = self._requests.pop(request_id, None)
        if entry is None:
            return
        endpoint, tokens = entry
        current = self.load(endpoint)
        requests = max(0, current.requests - 1)
        if requests == 0:
            self.loads.pop(endpoint, None)
        else:
            self.loads[endpoint] = InFlightLoad(requests, max(0, current.tokens - tokens))


class InFlightHooks:
    """PreRequest and ResponseComplete for plugins that count what they sent (`self.tracker`)."""

    tracker: InFlightTracker

    def pre_request(
        self,
        request: InferenceRequest,
        state: CycleState,  # noqa: ARG002 - protocol
        result: SchedulingResult,
    ) -> None:
        if result.targets:
            target = result.targets[0].endpoint.name
            tokens = estimate_tokens(request)
            self.tracker.start(request.request_id, target, tokens)
            if self.tracker.observer is not None:
                self.tracker.observer.started(request.request_id, target, tokens)

    def response_complete(
        self,
        request: InferenceRequest,
        endpoint: Endpoint,  # noqa: ARG002 - the request id says where it went
    ) -> None:
        self.tracker.finish(request.request_id)
        if self.tracker.observer is not None:
            self.tracker.observer.finished(request.request_id)
