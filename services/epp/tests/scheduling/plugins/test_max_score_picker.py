"""`max-score-picker`: highest totals, random tie-break, top N."""

from collections import Counter
from collections.abc import Sequence

import pytest

from igw.epp.endpoints import EndpointState
from igw.epp.framework import CycleState
from igw.epp.scheduling.plugins import MaxScorePicker
from igw.epp.testing.builders import endpoints, request, seeded


def names(picked: Sequence[EndpointState]) -> list[str]:
    return [e.endpoint.name for e in picked]


def test_picks_the_highest_score() -> None:
    picker = MaxScorePicker(rng=seeded(0))
    picked = picker.pick(request(), CycleState(), endpoints(3), [0.2, 0.9, 0.5])
    assert names(picked) == ["pod-1-rank-0"]


def test_ties_are_broken_at_random_among_the_best_only() -> None:
    picker = MaxScorePicker(rng=seeded(42))
    eps = endpoints(4)
    seen = Counter(
        names(picker.pick(request(), CycleState(), eps, [1.0, 0.1, 1.0, 1.0]))[0]
        for _ in range(300)
    )
    assert set(seen) == {"pod-0-rank-0", "pod-2-rank-0", "pod-3-rank-0"}


def test_same_seed_same_choice() -> None:
    eps, scores = endpoints(5), [0.5] * 5
    first = [names(MaxScorePicker(rng=seeded(7)).pick(request(), CycleState(), eps, scores))]
    again = [names(MaxScorePicker(rng=seeded(7)).pick(request(), CycleState(), eps, scores))]
    assert first == again


@pytest.mark.parametrize(
    ("max_endpoints", "expected"),
    [
        pytest.param(2, ["pod-2-rank-0", "pod-0-rank-0"], id="top-two-in-order"),
        pytest.param(10, ["pod-2-rank-0", "pod-0-rank-0", "pod-1-rank-0"], id="more-than-exist"),
        pytest.param(0, ["pod-2-rank-0"], id="zero-means-one"),
        pytest.param(-3, ["pod-2-rank-0"], id="negative-means-one"),
    ],
)
def test_top_n(max_endpoints: int, expected: list[str]) -> None:
    picker = MaxScorePicker(rng=seeded(1), max_endpoints=max_endpoints)
    assert names(picker.pick(request(), CycleState(), endpoints(3), [0.5, 0.1, 0.9])) == expected


def test_top_n_ties_are_random_but_scores_still_ordered() -> None:
    picker = MaxScorePicker(rng=seeded(3), max_endpoints=2)
    seen = {
        tuple(names(picker.pick(request(), CycleState(), endpoints(3), [0.5, 0.5, 0.9])))
        for _ in range(100)
    }
    assert seen == {("pod-2-rank-0", "pod-0-rank-0"), ("pod-2-rank-0", "pod-1-rank-0")}


def test_empty_input_picks_nothing() -> None:
    assert MaxScorePicker(rng=seeded(0)).pick(request(), CycleState(), [], []) == []
