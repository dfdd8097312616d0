"""The answer for each flow-control outcome: upstream's status and message (§1.10)."""

import pytest

from igw.epp.flowcontrol import Outcome, outcome_error

EVICTED = "request evicted from queue"
NOT_RUNNING = "flow controller is not running"


@pytest.mark.parametrize(
    ("outcome", "status", "body"),
    [
        pytest.param(
            Outcome.REJECTED_CAPACITY, 429,
            "ResourceExhausted - request rejected pre-queue: queue at capacity", id="capacity",
        ),
        pytest.param(
            Outcome.EVICTED_TTL, 503,
            f"ServiceUnavailable - request timed out in queue: {EVICTED}: request TTL expired",
            id="ttl",
        ),
        pytest.param(
            Outcome.EVICTED_CONTEXT_CANCELLED, 503,
            f"ServiceUnavailable - client disconnected: {EVICTED}: request context cancelled: "
            "context canceled",
            id="client-gone",
        ),
        pytest.param(
            Outcome.REJECTED_OTHER, 500,
            f"Internal - internal flow control error: request rejected pre-queue: {NOT_RUNNING}",
            id="rejected-other",
        ),
        pytest.param(
            Outcome.EVICTED_OTHER, 500,
            f"Internal - internal flow control error: {EVICTED}: {NOT_RUNNING}",
            id="evicted-other",
        ),
    ],
)  # fmt: skip
def test_each_refusal_has_upstreams_status_and_message(
    outcome: Outcome, status: int, body: str
) -> None:
    error = outcome_error(outcome)
    assert (error.status, error.body()) == (status, f"inference error: {body}")


def test_a_dispatched_request_has_no_error() -> None:
    with pytest.raises(ValueError, match="no error"):
        outcome_error(Outcome.DISPATCHED)
