"""The speed model: converges on known speeds, follows a change, starts at the pool's."""

import random

import pytest

from igw.epp.scheduling.plugins._speed_model import SpeedModel

FAST, SLOW = 0.0005, 0.00125  # seconds per token: one pod at 40 % of the others' speed
STEP = 256


def feed(model: SpeedModel, speeds: dict[str, float], start: float, seconds: float) -> float:
    """Waits drawn from the model's own form, +-30 % noise, 10 per pod per second."""
    rng = random.Random(7)  # noqa: S311 - test data
    now = start
    while now < start + seconds:
        now += 0.1
        for pod, speed in speeds.items():
            ahead = rng.randrange(0, 4000)
            wait = speed * (model.wait_tokens + ahead) * rng.uniform(0.7, 1.3)
            model.observe(pod, wait, ahead, now)
    return now


def test_converges_on_a_fleet_of_known_speeds() -> None:
    model = SpeedModel(step_tokens=STEP, half_life_s=4.0)
    speeds = {"a": FAST, "b": FAST, "c": FAST, "slow": SLOW}
    feed(model, speeds, 0.0, 20.0)
    for pod, speed in speeds.items():
        assert model.seconds_per_token(pod) == pytest.approx(speed, rel=0.1), pod


def test_recovers_within_seconds_after_a_pods_speed_changes() -> None:
    model = SpeedModel(step_tokens=STEP, half_life_s=4.0)
    now = feed(model, {"a": FAST, "b": FAST, "c": FAST}, 0.0, 20.0)
    # "a" degrades to 40 % speed (a throttled GPU): within 4 half-lives it is known as slow.
    feed(model, {"a": SLOW, "b": FAST, "c": FAST}, now, 16.0)
    assert model.seconds_per_token("a") == pytest.approx(SLOW, rel=0.15)
    assert model.seconds_per_token("b") == pytest.approx(FAST, rel=0.1)


def test_a_new_pod_starts_at_the_pools_median_speed() -> None:
    model = SpeedModel(initial=0.01, step_tokens=STEP)
    assert model.seconds_per_token("new") == 0.01  # nothing fitted: the configured prior
    feed(model, {"a": FAST, "b": FAST, "slow": SLOW}, 0.0, 10.0)
    assert model.seconds_per_token("new") == pytest.approx(FAST, rel=0.1)


def test_the_prediction_is_the_step_the_queue_and_the_prompt_at_that_speed() -> None:
    model = SpeedModel(initial=0.001, step_tokens=100)
    assert model.predict("pod", queued_tokens=400, uncached_tokens=500) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"initial": 0.0}, id="initial"),
        pytest.param({"half_life_s": 0.0}, id="half-life"),
        pytest.param({"prior_tokens": -1.0}, id="prior"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="positive"):
        SpeedModel(**settings)  # type: ignore[arg-type]  # the table's values are floats


def test_the_speed_table_is_each_endpoints_speed_and_follows_new_evidence() -> None:
    model = SpeedModel(initial=0.001)
    model.observe("a", 0.5, 872, now=0.0)  # 0.5 s for 1,000 tokens of work (128 + 872)
    model.observe("b", 2.0, 872, now=0.0)
    assert model.speeds() == {"a": model.seconds_per_token("a"), "b": model.seconds_per_token("b")}
    before = model.speeds()["a"]
    model.observe("a", 5.0, 872, now=1.0)
    assert model.speeds()["a"] > before
    assert "c" not in model.speeds()
    assert model.seconds_per_token("c") == model.pool()
