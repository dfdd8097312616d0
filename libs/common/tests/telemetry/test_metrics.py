"""igw.common.telemetry.metrics: the /metrics endpoint over real HTTP."""

from __future__ import annotations

import socket
import urllib.request

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from igw.common.telemetry.metrics import MetricsServer


def scrape(port: int) -> dict[str, float]:
    """Sample name -> value, from a real HTTP GET of /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def counter_registry(value: float) -> prometheus_client.CollectorRegistry:
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter("igw_test_requests", "Requests seen.", registry=registry)
    counter.inc(value)
    return registry


def test_serves_the_given_registry_on_a_free_port_then_releases_it() -> None:
    server = MetricsServer(counter_registry(3), host="127.0.0.1", port=0)
    server.start()
    try:
        assert server.port > 0
        assert scrape(server.port)["igw_test_requests_total"] == 3.0
    finally:
        server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


def test_serves_only_its_own_registry() -> None:
    # The process-wide default registry (python_gc_*, process_*) must not leak in.
    with MetricsServer(counter_registry(1), host="127.0.0.1", port=0) as server:
        samples = scrape(server.port)
    assert set(samples) == {"igw_test_requests_total", "igw_test_requests_created"}


def test_values_are_read_at_scrape_time() -> None:
    registry = prometheus_client.CollectorRegistry()
    gauge = prometheus_client.Gauge("igw_test_queue", "Queued requests.", registry=registry)
    with MetricsServer(registry, host="127.0.0.1", port=0) as server:
        gauge.set(2)
        first = scrape(server.port)["igw_test_queue"]
        gauge.set(7)
        second = scrape(server.port)["igw_test_queue"]
    assert (first, second) == (2.0, 7.0)


def test_start_twice_is_refused_and_stop_twice_is_harmless() -> None:
    server = MetricsServer(prometheus_client.CollectorRegistry(), host="127.0.0.1", port=0)
    server.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
    finally:
        server.stop()
    server.stop()


def test_a_taken_port_fails_at_start() -> None:
    with MetricsServer(prometheus_client.CollectorRegistry(), host="127.0.0.1", port=0) as first:
        second = MetricsServer(
            prometheus_client.CollectorRegistry(), host="127.0.0.1", port=first.port
        )
        with pytest.raises(OSError, match="in use"):
            second.start()
