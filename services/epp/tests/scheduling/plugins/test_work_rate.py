"""`_work_rate`: the share of a pod's time its incoming prefill work takes, and the slowdown."""

import pytest

from igw.epp.scheduling.plugins._work_rate import WorkRate

SPEED = 0.0005  # seconds per token: 2,000 tokens/s saturate the pod


def fed(rate: WorkRate, tokens_per_second: float, seconds: float, start: float = 0.0) -> float:
    """Sends `tokens_per_second` in 10 ms slices for `seconds`; the time at the end."""
    now = start
    for _ in range(round(seconds / 0.01)):
        now += 0.01
        rate.add("pod", tokens_per_second * 0.01, now)
    return now


def test_an_idle_pod_is_not_slowed() -> None:
    assert WorkRate().slowdown("pod", 5.0, SPEED) == 1.0


@pytest.mark.parametrize(
    ("tokens_per_second", "expected"),
    [
        pytest.param(200, 1 / (1 - 0.1), id="light-load"),
        pytest.param(1000, 1 / (1 - 0.5), id="half-busy"),
        pytest.param(5000, 1 / (1 - 0.9), id="over-capacity-capped"),
    ],
)
def test_the_slowdown_follows_the_work_sent(tokens_per_second: float, expected: float) -> None:
    rate = WorkRate(window_s=1.0, max_share=0.9)
    now = fed(rate, tokens_per_second, 10.0)
    assert rate.slowdown("pod", now, SPEED) == pytest.approx(expected, rel=0.02)


def test_a_pod_no_longer_sent_work_recovers_within_a_few_windows() -> None:
    rate = WorkRate(window_s=1.0)
    now = fed(rate, 1800, 10.0)
    assert rate.slowdown("pod", now, SPEED) > 5
    assert rate.slowdown("pod", now + 5.0, SPEED) < 1.02


def test_the_arrival_rate_counts_requests_whatever_their_size() -> None:
    rate = WorkRate(window_s=1.0)
    now = 0.0
    for i in range(500):  # 50 requests a second for 10 s, alternately tiny and large
        now = i * 0.02
        rate.add("pod", 10 if i % 2 else 2000, now)
    slowdown, arrivals = rate.rates("pod", now, SPEED)
    assert arrivals == pytest.approx(50, rel=0.05)
    assert rate.requests_per_second("pod", now) == arrivals
    assert slowdown == rate.slowdown("pod", now, SPEED)
    assert rate.rates("idle", now, SPEED) == (1.0, 0.0)


def test_rejects_settings_out_of_range() -> None:
    with pytest.raises(ValueError, match="window"):
        WorkRate(window_s=0)
    with pytest.raises(ValueError, match="max_share"):
        WorkRate(max_share=1.0)
