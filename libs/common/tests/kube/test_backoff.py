"""The retry delays: growing while failures last, jittered, bounded, back to short after a reset."""

from __future__ import annotations

import pytest

from igw.common.kube._backoff import Backoff


@pytest.mark.parametrize(
    ("rng", "expected"),
    [
        # d = min(1.0, 0.1 * 2**n); the delay is d/2 + rng * d/2.
        pytest.param(0.0, [0.05, 0.1, 0.2, 0.4, 0.5, 0.5], id="lowest-jitter"),
        pytest.param(0.999999, [0.1, 0.2, 0.4, 0.8, 1.0, 1.0], id="highest-jitter"),
    ],
)
def test_delays_double_until_the_cap(rng: float, expected: list[float]) -> None:
    backoff = Backoff(0.1, 1.0, rng=lambda: rng)

    delays = [backoff.next_delay() for _ in expected]

    assert delays == pytest.approx(expected, rel=1e-5)


def test_the_jitter_spreads_replicas_apart() -> None:
    delays = {Backoff(1.0, 1.0).next_delay() for _ in range(50)}

    assert len(delays) > 40  # not in lockstep
    assert all(0.5 <= delay <= 1.0 for delay in delays)


def test_reset_starts_again_from_the_initial_delay() -> None:
    backoff = Backoff(0.1, 10.0, rng=lambda: 0.0)
    for _ in range(5):
        backoff.next_delay()

    backoff.reset()

    assert backoff.next_delay() == pytest.approx(0.05)


def test_a_long_outage_stays_at_the_cap() -> None:
    backoff = Backoff(0.1, 30.0, rng=lambda: 0.0)

    delays = [backoff.next_delay() for _ in range(2000)]

    assert delays[-1] == pytest.approx(15.0)


@pytest.mark.parametrize(
    ("initial", "maximum"),
    [pytest.param(0.0, 1.0, id="zero-initial"), pytest.param(2.0, 1.0, id="initial-above-max")],
)
def test_nonsense_bounds_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(initial, maximum)
