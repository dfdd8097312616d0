"""`kv-cache-utilization-scorer`: 1 - KV usage."""

import pytest

from igw.epp.framework import CycleState
from igw.epp.scheduling.plugins import KvCacheUtilizationScorer
from igw.epp.testing.builders import endpoint, request


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        pytest.param([0.0, 0.25, 1.0], [1.0, 0.75, 0.0], id="linear"),
        pytest.param([0.5, 0.5], [0.5, 0.5], id="equal-not-normalised"),
        pytest.param([], [], id="empty"),
    ],
)
def test_scores(usage: list[float], expected: list[float]) -> None:
    eps = [endpoint(f"e{i}", kv=u) for i, u in enumerate(usage)]
    assert KvCacheUtilizationScorer().score(request(), CycleState(), eps) == pytest.approx(expected)
