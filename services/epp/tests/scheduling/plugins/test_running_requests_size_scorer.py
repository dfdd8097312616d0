"""`running-requests-size-scorer`: inverted min-max of running requests."""

import pytest

from igw.epp.framework import CycleState
from igw.epp.scheduling.plugins import RunningRequestsSizeScorer
from igw.epp.testing.builders import endpoint, request


@pytest.mark.parametrize(
    ("running", "expected"),
    [
        pytest.param([4, 0, 2], [0.0, 1.0, 0.5], id="min-max"),
        pytest.param([9, 9], [1.0, 1.0], id="all-equal-score-one"),
        pytest.param([], [], id="empty"),
    ],
)
def test_scores(running: list[int], expected: list[float]) -> None:
    eps = [endpoint(f"e{i}", running=r, waiting=99) for i, r in enumerate(running)]
    assert RunningRequestsSizeScorer().score(request(), CycleState(), eps) == pytest.approx(
        expected
    )
