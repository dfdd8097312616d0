"""The hot-path metrics expose exactly what prometheus_client's own would, minus `_created`."""

from __future__ import annotations

import threading
import types
from collections.abc import Callable

import prometheus_client
import pytest
import structlog
import structlog.testing
from prometheus_client import CollectorRegistry, generate_latest

from igw.common.telemetry import hot

BUCKETS = (0.0001, 0.005, 0.1, 1.0, 1024, 2**30)
VALUES = (0.0, 0.0001, 0.00011, 0.005, 0.7, 1.0, 3.0, 2000.0, 2.0**31)


def _exposition(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def _record(module: types.ModuleType, registry: CollectorRegistry) -> None:
    """The same calls through `hot` or through prometheus_client itself (`module`)."""
    counter = module.Counter("requests", "Requests.", ["model", "code"], registry=registry)
    gauge = module.Gauge("running", "Running.", ["model"], registry=registry)
    histogram = module.Histogram(
        "latency_seconds", "Latency.", ["model"], buckets=BUCKETS, registry=registry
    )
    plain = module.Histogram("plain", "No labels.", buckets=BUCKETS, registry=registry)
    total = module.Counter("total", "No labels.", registry=registry)
    for value in VALUES:
        histogram.labels("a").observe(value)
        plain.observe(value)
    histogram.labels("b").observe(0.05)
    counter.labels("a", "200").inc()
    counter.labels("a", "200").inc(2.5)
    counter.labels("b", 500).inc()  # a non-string value is the same series as its text
    counter.labels("b", "500").inc()
    gauge.labels("a").inc()
    gauge.labels("a").inc()
    gauge.labels("a").dec()
    gauge.labels("b").set(7)
    total.inc(3)


def test_exposition_matches_prometheus_client_line_for_line() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    _record(hot, ours)
    _record(prometheus_client, theirs)
    assert sorted(_exposition(ours)) == sorted(_exposition(theirs))
    assert ours.get_sample_value("requests_total", {"model": "b", "code": "500"}) == 2
    assert ours.get_sample_value("latency_seconds_count", {"model": "a"}) == len(VALUES)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda r: hot.Histogram("h", "h", buckets=(1, 1), registry=r),
            "strictly ascending", id="repeated-bucket",
        ),
        pytest.param(
            lambda r: hot.Histogram("h", "h", buckets=(), registry=r),
            "non-empty", id="no-bucket",
        ),
        pytest.param(
            lambda r: hot.Counter("c", "c", ["a"], registry=r).labels("x", "y"),
            "1 label values expected", id="label-count",
        ),
        pytest.param(
            lambda r: hot.Counter("c", "c", ["a"], registry=r).inc(),
            "use labels", id="labelled-without-labels",
        ),
        pytest.param(
            lambda r: hot.Counter("c", "c", registry=r).inc(-1),
            "only go up", id="negative-counter",
        ),
    ],
)  # fmt: skip
def test_misuse_is_refused_with_a_message(
    make: Callable[[CollectorRegistry], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make(CollectorRegistry())


def test_a_duplicate_name_is_refused_by_the_registry() -> None:
    registry = CollectorRegistry()
    hot.Counter("requests", "Requests.", registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        prometheus_client.Counter("requests", "Requests.", registry=registry)


def test_a_scrape_during_writes_is_consistent() -> None:
    registry = CollectorRegistry()
    histogram = hot.Histogram("h", "h", ["k"], buckets=(1.0,), registry=registry)
    done = threading.Event()

    def write() -> None:
        for i in range(200_000):
            histogram.labels(str(i % 50)).observe(0.5)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    while not done.is_set():
        for family in registry.collect():
            for sample in family.samples:
                if sample.name == "h_count":
                    labels = {**sample.labels, "le": "+Inf"}
                    bucket = next(
                        s.value for s in family.samples
                        if s.name == "h_bucket" and s.labels == labels
                    )  # fmt: skip
                    assert bucket == sample.value
    writer.join()
    assert sum(registry.get_sample_value("h_count", {"k": str(k)}) or 0 for k in range(50)) == (
        200_000
    )


def test_label_sets_past_the_bound_are_counted_in_one_overflow_series() -> None:
    registry = CollectorRegistry()
    counter = hot.Counter("requests", "Requests.", ["model"], registry=registry, max_series=3)
    running = hot.Gauge("running", "Running.", ["model"], registry=registry, max_series=3)
    with structlog.testing.capture_logs() as logs:
        for i in range(1000):  # a client naming a new model in every request
            counter.labels(f"model-{i}").inc()
            running.labels(f"model-{i}").inc()
    for i in range(1000):  # the gauge's decrements find the same series as its increments
        running.labels(f"model-{i}").dec()
    lines = [line for line in _exposition(registry) if not line.startswith("#")]
    assert sorted(lines) == sorted(
        [
            'requests_total{model="model-0"} 1.0',
            'requests_total{model="model-1"} 1.0',
            'requests_total{model="model-2"} 1.0',
            f'requests_total{{model="{hot.OVERFLOW}"}} 997.0',
            'running{model="model-0"} 0.0',
            'running{model="model-1"} 0.0',
            'running{model="model-2"} 0.0',
            f'running{{model="{hot.OVERFLOW}"}} 0.0',
        ]
    )
    assert len(counter._children) == 4  # nothing cached per overflowing label set
    warnings = [log["metric"] for log in logs if "at their bound" in log["event"]]
    assert warnings == ["requests", "running"]  # once per family, not per request
