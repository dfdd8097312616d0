"""`token-load-scorer`: 1 - min(1, in-flight tokens / threshold)."""

import pytest

from igw.epp.framework import CycleState
from igw.epp.scheduling import INFLIGHT_LOAD, InFlightLoad
from igw.epp.scheduling.plugins import TokenLoadScorer
from igw.epp.testing.builders import endpoints, request


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        pytest.param(0, 1.0, id="idle"),
        pytest.param(250, 0.75, id="quarter"),
        pytest.param(1000, 0.0, id="at-threshold"),
        pytest.param(5000, 0.0, id="over-threshold-capped"),
    ],
)
def test_score(tokens: int, expected: float) -> None:
    state = CycleState()
    state.set_attribute(INFLIGHT_LOAD, "pod-0-rank-0", InFlightLoad(1, tokens))
    scorer = TokenLoadScorer(queue_threshold_tokens=1000)
    assert scorer.score(request(), state, endpoints(1)) == pytest.approx([expected])


def test_missing_attribute_is_idle_and_default_threshold_is_upstreams() -> None:
    assert TokenLoadScorer().threshold == 4_194_304
    assert TokenLoadScorer().score(request(), CycleState(), endpoints(2)) == [1.0, 1.0]


def test_non_positive_threshold_is_rejected() -> None:
    with pytest.raises(ValueError, match="queueThresholdTokens"):
        TokenLoadScorer(queue_threshold_tokens=0)
