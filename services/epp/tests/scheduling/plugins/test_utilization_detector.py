"""`utilization-detector`: saturation from queue/KV, and a filter that keeps the unsaturated."""

import pytest

from igw.epp.framework import CycleState, PluginHandle
from igw.epp.scheduling.plugins import UtilizationDetector
from igw.epp.testing.builders import NOW, FakeClock, endpoint, request


def detector(**kw: float) -> UtilizationDetector:
    return UtilizationDetector(clock=FakeClock(), **kw)  # type: ignore[arg-type]  # thresholds of mixed int/float types


@pytest.mark.parametrize(
    ("metrics", "expected"),
    [
        pytest.param([{}], 0.0, id="idle"),
        pytest.param([{"waiting": 5}], 1.0, id="queue-at-threshold"),
        pytest.param([{"kv": 0.4}], 0.5, id="kv-half-threshold"),
        pytest.param([{"waiting": 10, "kv": 0.4}], 2.0, id="max-of-the-two"),
        pytest.param([{}, {"waiting": 5}], 0.5, id="averaged"),
        pytest.param([{"updated_at": NOW - 1}], 1.0, id="stale-counts-saturated"),
        pytest.param([], 1.0, id="no-endpoints-saturated"),
    ],
)
def test_saturation(metrics: list[dict[str, float]], expected: float) -> None:
    eps = [endpoint(f"e{i}", **m) for i, m in enumerate(metrics)]  # type: ignore[arg-type]  # table of keyword values
    assert detector().saturation(eps) == pytest.approx(expected)


def test_filter_drops_saturated_and_stale() -> None:
    eps = [
        endpoint("ok", waiting=4, kv=0.79),
        endpoint("queue", waiting=5),
        endpoint("kv", kv=0.8),
        endpoint("stale", updated_at=NOW - 0.3),
    ]
    kept = detector().filter(request(), CycleState(), eps)
    assert [e.endpoint.name for e in kept] == ["ok"]


def test_headroom_raises_the_limits() -> None:
    eps = [endpoint("queue", waiting=5), endpoint("kv", kv=0.85)]
    kept = detector(headroom=0.25).filter(request(), CycleState(), eps)
    assert [e.endpoint.name for e in kept] == ["queue", "kv"]


def test_filter_keeps_all_when_all_would_go() -> None:
    eps = [endpoint("a", waiting=9), endpoint("b", kv=0.99)]
    assert list(detector().filter(request(), CycleState(), eps)) == eps


def test_params_use_upstream_names_and_durations() -> None:
    d = UtilizationDetector.from_config(
        "u",
        {"queueDepthThreshold": 10, "kvCacheUtilThreshold": 0.9, "metricsStalenessThreshold": "1s"},
        PluginHandle(clock=FakeClock()),
    )
    assert (d.queue_threshold, d.kv_threshold, d.staleness) == (10, 0.9, 1.0)
    default = UtilizationDetector.from_config("u", {}, PluginHandle())
    assert (default.queue_threshold, default.kv_threshold, default.staleness) == (5, 0.8, 0.2)
