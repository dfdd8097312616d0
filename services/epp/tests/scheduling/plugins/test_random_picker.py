"""`random-picker`: uniform, distinct, ignores scores."""

from collections import Counter

from igw.epp.framework import CycleState
from igw.epp.scheduling.plugins import RandomPicker
from igw.epp.testing.builders import endpoints, request, seeded


def test_ignores_scores_and_reaches_every_endpoint() -> None:
    picker = RandomPicker(rng=seeded(5))
    eps = endpoints(3)
    seen = Counter(
        picker.pick(request(), CycleState(), eps, [1.0, 0.0, 0.0])[0].endpoint.name
        for _ in range(600)
    )
    assert set(seen) == {e.endpoint.name for e in eps}
    assert min(seen.values()) > 120  # ~200 each


def test_n_distinct_endpoints() -> None:
    picked = RandomPicker(rng=seeded(1), max_endpoints=3).pick(
        request(), CycleState(), endpoints(5), [0.0] * 5
    )
    assert len({e.endpoint.name for e in picked}) == 3


def test_empty_input_picks_nothing() -> None:
    assert RandomPicker(rng=seeded(0)).pick(request(), CycleState(), [], []) == []
