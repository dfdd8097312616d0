"""How a request leaves flow control, and the error the client gets for each way (§1.10, §5.4).

The outcome names are upstream's (`types/outcomes.go`); so are the messages, which upstream
builds by wrapping sentinel errors (`request rejected pre-queue: queue at capacity`) and then
prefixing them by outcome (`requestcontrol/admission.go`, `translateFlowControlOutcome`):

    Dispatched                 admitted: the request goes on to scheduling
    RejectedCapacity     429   request rejected pre-queue: queue at capacity
    RejectedOther        500   internal flow control error: request rejected pre-queue: ...
    EvictedTTL           503   request timed out in queue: request evicted from queue: request
                               TTL expired
    EvictedContextCancelled    the client went away: nobody is left to answer (upstream would
                               answer 503 `client disconnected: ...`); the stream is cancelled
    EvictedOther         500   internal flow control error: request evicted from queue: ...

An in-flight request evicted for a starving band (igw's wiring of upstream's unwired eviction)
ends with `FlowControlEvictedError`: 429 and the plain body `request evicted by flow control`,
upstream's, without the `inference error:` prefix.
"""

from __future__ import annotations

import enum

from igw.common.errors import (
    InferenceError,
    InternalError,
    ResourceExhaustedError,
    ServiceUnavailableError,
)

__all__ = ["EVICTED_BODY", "NOT_RUNNING", "FlowControlEvictedError", "Outcome", "outcome_error"]

NOT_RUNNING = "flow controller is not running"
EVICTED_BODY = "request evicted by flow control"
_REJECTED = "request rejected pre-queue"
_EVICTED = "request evicted from queue"


class Outcome(enum.Enum):
    DISPATCHED = "Dispatched"
    REJECTED_CAPACITY = "RejectedCapacity"
    REJECTED_OTHER = "RejectedOther"
    EVICTED_TTL = "EvictedTTL"
    EVICTED_CONTEXT_CANCELLED = "EvictedContextCancelled"
    EVICTED_OTHER = "EvictedOther"


class FlowControlEvictedError(ResourceExhaustedError):
    """An in-flight request ended by eviction: 429 with upstream's unprefixed body."""

    def __init__(self) -> None:
        super().__init__(EVICTED_BODY)

    def body(self) -> str:
        return EVICTED_BODY


def outcome_error(outcome: Outcome, cause: str = NOT_RUNNING) -> InferenceError:
    """The error a request refused with `outcome` gets (any outcome but `DISPATCHED`). `cause`
    is the underlying reason of the `*_OTHER` outcomes."""
    match outcome:
        case Outcome.REJECTED_CAPACITY:
            return ResourceExhaustedError(f"{_REJECTED}: queue at capacity")
        case Outcome.EVICTED_TTL:
            return ServiceUnavailableError(
                f"request timed out in queue: {_EVICTED}: request TTL expired"
            )
        case Outcome.EVICTED_CONTEXT_CANCELLED:
            return ServiceUnavailableError(
                f"client disconnected: {_EVICTED}: request context cancelled: context canceled"
            )
        case Outcome.REJECTED_OTHER:
            return InternalError(f"internal flow control error: {_REJECTED}: {cause}")
        case Outcome.EVICTED_OTHER:
            return InternalError(f"internal flow control error: {_EVICTED}: {cause}")
        case Outcome.DISPATCHED:
            raise ValueError("a dispatched request has no error")
