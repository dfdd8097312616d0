"""`queue-scorer`: inverted min-max of the waiting queue."""

import pytest

from igw.epp.framework import CycleState
from igw.epp.scheduling.plugins import QueueScorer
from igw.epp.testing.builders import endpoint, request


@pytest.mark.parametrize(
    ("queues", "expected"),
    [
        pytest.param([0, 5, 10], [1.0, 0.5, 0.0], id="min-max"),
        pytest.param([3, 3, 3], [1.0, 1.0, 1.0], id="all-equal-score-one"),
        pytest.param([7], [1.0], id="single"),
        pytest.param([], [], id="empty"),
        pytest.param([2, 10, 6], [1.0, 0.0, 0.5], id="order-preserved"),
    ],
)
def test_scores(queues: list[int], expected: list[float]) -> None:
    eps = [endpoint(f"e{i}", waiting=q) for i, q in enumerate(queues)]
    assert QueueScorer().score(request(), CycleState(), eps) == pytest.approx(expected)
