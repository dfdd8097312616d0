"""`request-latency-reporter`: TTFT, TPOT and SLO violations as a client saw them, in upstream's
metrics (driven on a fake clock through the plugin's hooks, as the request path calls them)."""

import dataclasses
from collections.abc import Mapping

import pytest

from igw.epp.config import builtin_registry
from igw.epp.endpoints import InferenceRequest
from igw.epp.framework import CycleState, PluginHandle, ProfileResult, Response, SchedulingResult
from igw.epp.framework.metrics import SchedulerMetrics
from igw.epp.framework.parsing import Usage
from igw.epp.scheduling.plugins import RequestLatencyReporter
from igw.epp.testing.builders import FakeClock, endpoint, request

SSE = {":status": "200", "content-type": "text/event-stream"}
JSON = {":status": "200", "content-type": "application/json"}
LABELS = {"model_name": "base-model", "target_model_name": "base-model"}


def streamed(headers: Mapping[str, str] | None = None) -> InferenceRequest:
    return dataclasses.replace(request(headers=headers), stream=True)


class Harness:
    def __init__(self) -> None:
        self.clock = FakeClock(100.0)
        self.metrics = SchedulerMetrics()
        self.plugin = RequestLatencyReporter.from_config(
            "latency", {}, PluginHandle(metrics=self.metrics, clock=self.clock)
        )

    def send(self, r: InferenceRequest) -> None:
        picked = SchedulingResult({"default": ProfileResult((endpoint("a"),))}, "default")
        self.plugin.pre_request(r, CycleState(), picked)

    def chunk(self, r: InferenceRequest, at: float, headers: Mapping[str, str]) -> None:
        self.clock.now = at
        self.plugin.response_body(r, Response(r.request_id, dict(headers)), None)

    def end(
        self, r: InferenceRequest, at: float, headers: Mapping[str, str], tokens: int | None
    ) -> None:
        self.clock.now = at
        usage = None if tokens is None else Usage(10, tokens, 10 + tokens)
        response = Response(r.request_id, dict(headers), end_of_stream=True, usage=usage)
        self.plugin.response_body(r, response, None)

    def value(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, {**LABELS, **labels})


def test_streamed_answer_ttft_is_the_first_chunk_and_tpot_the_average_after_it() -> None:
    h = Harness()
    r = streamed()
    h.send(r)
    h.chunk(r, 100.3, SSE)
    h.chunk(r, 100.5, SSE)
    h.end(r, 101.3, SSE, tokens=11)
    assert h.value("inference_objective_request_ttft_seconds_sum") == pytest.approx(0.3)
    assert h.value("inference_objective_request_tpot_seconds_sum") == pytest.approx(0.1)
    assert h.value("inference_objective_inference_request_metric", type="ttft") == pytest.approx(
        0.3
    )
    assert h.value("inference_objective_request_slo_violation_total", type="ttft") is None


def test_whole_answer_ttft_is_its_duration() -> None:
    h = Harness()
    r = request()
    h.send(r)
    h.end(r, 100.8, JSON, tokens=5)  # one chunk holding the whole body
    assert h.value("inference_objective_request_ttft_seconds_sum") == pytest.approx(0.8)
    # Everything arrived at once: the client saw no time per output token.
    assert h.value("inference_objective_request_tpot_seconds_count") is None


@pytest.mark.parametrize(
    ("ttft_slo", "tpot_slo", "ttft_violations", "tpot_violations"),
    [
        pytest.param("200", "150", 1.0, None, id="ttft-missed-tpot-met"),
        pytest.param("300", "50", None, 1.0, id="ttft-met-exactly-tpot-missed"),
    ],
)
def test_slo_headers_count_violations_by_type(
    ttft_slo: str, tpot_slo: str, ttft_violations: float | None, tpot_violations: float | None
) -> None:
    h = Harness()
    r = streamed({"x-slo-ttft-ms": ttft_slo, "x-slo-tpot-ms": tpot_slo})
    h.send(r)
    h.chunk(r, 100.3, SSE)
    h.end(r, 101.3, SSE, tokens=11)
    violations = "inference_objective_request_slo_violation_total"
    assert h.value(violations, type="ttft") == ttft_violations
    assert h.value(violations, type="tpot") == tpot_violations
    gauge = "inference_objective_inference_request_metric"
    assert h.value(gauge, type="ttft_slo_violation") == (1.0 if ttft_violations else 0.0)
    assert h.value(gauge, type="tpot_slo_violation") == (1.0 if tpot_violations else 0.0)


@pytest.mark.parametrize("header", ["soon", "-5", "1.5", ""])
def test_an_slo_upstream_would_not_read_is_no_slo(header: str) -> None:
    h = Harness()
    r = streamed({"x-slo-ttft-ms": header})
    h.send(r)
    h.chunk(r, 105.0, SSE)
    h.end(r, 106.0, SSE, tokens=3)
    assert h.value("inference_objective_request_ttft_seconds_count") == 1.0
    assert h.value("inference_objective_request_slo_violation_total", type="ttft") is None
    assert (
        h.value("inference_objective_inference_request_metric", type="ttft_slo_violation") is None
    )


@pytest.mark.parametrize(
    ("headers", "tokens"),
    [
        pytest.param({}, None, id="no-response-at-all"),
        pytest.param({":status": "503"}, 4, id="error-status"),
        pytest.param(JSON, None, id="headers-but-no-body"),
    ],
)
def test_nothing_is_recorded_for_an_answer_the_client_never_got(
    headers: Mapping[str, str], tokens: int | None
) -> None:
    h = Harness()
    r = request()
    h.send(r)
    h.end(r, 101.0, headers, tokens=tokens)
    assert h.value("inference_objective_request_ttft_seconds_count") is None


def test_state_is_dropped_when_the_request_ends_without_a_body_call() -> None:
    h = Harness()
    for i in range(3):
        r = request(request_id=f"r{i}")
        h.send(r)
        h.plugin.response_complete(r, endpoint("a").endpoint)
    assert h.plugin._timings == {}  # no per-request state outlives it


def test_the_families_appear_only_once_configured() -> None:
    metrics = SchedulerMetrics()
    names = {m.name for m in metrics.registry.collect()}
    assert "inference_objective_request_ttft_seconds" not in names
    builtin_registry(entry_points=False).create(
        "request-latency-reporter", "latency", {}, PluginHandle(metrics=metrics)
    )
    names = {m.name for m in metrics.registry.collect()}
    assert {
        "inference_objective_request_ttft_seconds",
        "inference_objective_request_tpot_seconds",
        "inference_objective_request_slo_violation",
        "inference_objective_inference_request_metric",
    } <= names
