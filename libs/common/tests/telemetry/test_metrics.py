"""igw.common.telemetry.metrics: /metrics over real HTTP, with or without an authorizer."""

from __future__ import annotations

import http.client
import socket
import urllib.request
from http import HTTPStatus

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from igw.common.telemetry.metrics import MetricsServer
from igw.common.telemetry.metrics_auth import AccessDecision


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


class RecordingAuthorizer:
    """Answers `decision` (or raises it) to every request and records what it was asked."""

    def __init__(self, decision: AccessDecision | Exception) -> None:
        self.decision = decision
        self.asked: list[tuple[str | None, str, str]] = []

    def authorize(self, authorization: str | None, *, verb: str, path: str) -> AccessDecision:
        self.asked.append((authorization, verb, path))
        if isinstance(self.decision, Exception):
            raise self.decision
        return self.decision


def get(port: int, path: str = "/metrics", **headers: str) -> tuple[int, dict[str, str], str]:
    """Status, headers and body of a real HTTP GET, error statuses included."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def test_an_allowed_request_gets_the_metrics_and_the_authorizer_sees_it() -> None:
    authorizer = RecordingAuthorizer(AccessDecision(HTTPStatus.OK))
    with MetricsServer(counter_registry(4), host="127.0.0.1", port=0, authorizer=authorizer) as s:
        status, _, body = get(s.port, "/metrics?x=1", Authorization="Bearer abc")
    assert status == 200
    assert "igw_test_requests_total 4.0" in body
    # The method in lower case and the path without its query: the SubjectAccessReview's fields.
    assert authorizer.asked == [("Bearer abc", "get", "/metrics")]


@pytest.mark.parametrize(
    ("decision", "www_authenticate"),
    [
        pytest.param(AccessDecision(HTTPStatus.UNAUTHORIZED, "Unauthorized"), "Bearer", id="401"),
        pytest.param(
            AccessDecision(HTTPStatus.FORBIDDEN, "Authorization denied for user u"), None, id="403"
        ),
        pytest.param(
            AccessDecision(HTTPStatus.INTERNAL_SERVER_ERROR, "Authentication failed"),
            None,
            id="500",
        ),
    ],
)
def test_a_refused_request_gets_the_decision_and_never_the_metrics(
    decision: AccessDecision, www_authenticate: str | None
) -> None:
    authorizer = RecordingAuthorizer(decision)
    with MetricsServer(counter_registry(1), host="127.0.0.1", port=0, authorizer=authorizer) as s:
        status, headers, body = get(s.port)
    assert status == decision.status
    assert body == f"{decision.message}\n"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers.get("WWW-Authenticate") == www_authenticate
    assert authorizer.asked == [(None, "get", "/metrics")]


def test_an_authorizer_that_raises_fails_closed() -> None:
    authorizer = RecordingAuthorizer(RuntimeError("a bug in the authorizer"))
    with MetricsServer(counter_registry(1), host="127.0.0.1", port=0, authorizer=authorizer) as s:
        status, _, body = get(s.port)
    assert status == 500
    assert "igw_test_requests" not in body
