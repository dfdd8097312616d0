"""`weighted-random-picker`: A-Res sampling proportional to score."""

from collections import Counter

import pytest

from igw.epp.framework import CycleState
from igw.epp.scheduling.plugins import WeightedRandomPicker
from igw.epp.testing.builders import endpoints, request, seeded


def test_picks_roughly_in_proportion_to_score() -> None:
    picker = WeightedRandomPicker(rng=seeded(11))
    eps = endpoints(3)
    runs = 6000
    seen = Counter(
        picker.pick(request(), CycleState(), eps, [1.0, 2.0, 3.0])[0].endpoint.name
        for _ in range(runs)
    )
    for i, share in enumerate([1 / 6, 2 / 6, 3 / 6]):
        assert seen[f"pod-{i}-rank-0"] / runs == pytest.approx(share, abs=0.03)


def test_zero_scores_never_win_over_positive_ones() -> None:
    picker = WeightedRandomPicker(rng=seeded(2))
    for _ in range(200):
        [e] = picker.pick(request(), CycleState(), endpoints(3), [0.0, 0.01, -1.0])
        assert e.endpoint.name == "pod-1-rank-0"


def test_all_zero_is_uniform() -> None:
    picker = WeightedRandomPicker(rng=seeded(4))
    seen = Counter(
        picker.pick(request(), CycleState(), endpoints(3), [0.0] * 3)[0].endpoint.name
        for _ in range(600)
    )
    assert len(seen) == 3
    assert min(seen.values()) > 120


def test_top_n_are_distinct() -> None:
    picker = WeightedRandomPicker(rng=seeded(9), max_endpoints=2)
    picked = picker.pick(request(), CycleState(), endpoints(4), [0.1, 0.0, 0.5, 0.9])
    assert len({e.endpoint.name for e in picked}) == 2


def test_empty_input_picks_nothing() -> None:
    assert WeightedRandomPicker(rng=seeded(0)).pick(request(), CycleState(), [], []) == []
