"""`request-latency-reporter`: what each request's client saw (TTFT, TPOT) and whether it met the
SLO it asked for, in upstream's metrics.

PreRequest notes when the request was sent and its SLOs (`x-slo-ttft-ms`, `x-slo-tpot-ms`, read
as upstream reads them). For a streamed answer (the request asked for `stream`, or the response
is `text/event-stream`) TTFT ends at the response body's first chunk; for a whole answer the
client's first token arrives with the whole body, so TTFT is the request's duration. TPOT is
upstream's average: (duration - TTFT) / (completion tokens - 1), from the usage the model server
reported; a whole answer, one without usage, or one with a single token records no TPOT (as
upstream, which records none that is not above zero). At the end it observes:

- `inference_objective_request_ttft_seconds` and `inference_objective_request_tpot_seconds`;
- `inference_objective_request_slo_violation_total{type="ttft"|"tpot"}` for each SLO exceeded;
- `inference_objective_inference_request_metric` with `type` `ttft`, `tpot` (seconds), and
  `ttft_slo_violation` / `tpot_slo_violation` (1 or 0, for requests that set that SLO).

Upstream records these inside its experimental predicted-latency plugin; here they are a plugin of
their own, usable with any profile. A ResponseBody plugin makes the EPP read response bodies in the
lean mode too (a gRPC message per chunk), so configure it where the measurement is worth that.
Only 2xx answers are measured. A response whose body never came (upstream error, client gone
first: one end-of-stream call with no usage) records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from igw.epp.endpoints import Endpoint, InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.metrics import RequestLatencyMetrics
from igw.epp.framework.params import NoParams, decode_params
from igw.epp.framework.response import Response
from igw.epp.framework.results import SchedulingResult
from igw.epp.scheduling.plugins._slo import SLO_TPOT_HEADER, SLO_TTFT_HEADER, slo_seconds

__all__ = ["RequestLatencyReporter"]

_SSE = "text/event-stream"


@dataclass(slots=True)
class _Timing:
    sent_at: float
    ttft_slo: float | None
    tpot_slo: float | None
    first_chunk_at: float | None = None


class RequestLatencyReporter:
    type_name: ClassVar[str] = "request-latency-reporter"

    def __init__(
        self, name: str = type_name, *, metrics: RequestLatencyMetrics, clock: Callable[[], float]
    ) -> None:
        self.name = name
        self.metrics = metrics
        self.clock = clock
        self._timings: dict[str, _Timing] = {}
        """Request id -> timing, from PreRequest until the response ends or the request does."""

    @classmethod
    def from_config(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> Self:
        decode_params(params, NoParams)
        return cls(name, metrics=handle.metrics.request_latency(), clock=handle.clock)

    def pre_request(
        self,
        request: InferenceRequest,
        state: CycleState,  # noqa: ARG002 - protocol
        result: SchedulingResult,
    ) -> None:
        if not result.targets:
            return
        self._timings[request.request_id] = _Timing(
            self.clock(),
            slo_seconds(request, SLO_TTFT_HEADER),
            slo_seconds(request, SLO_TPOT_HEADER),
        )

    def response_body(
        self,
        request: InferenceRequest,
        response: Response,
        endpoint: Endpoint | None,  # noqa: ARG002 - protocol
    ) -> None:
        timing = self._timings.get(request.request_id)
        if timing is None:
            return
        now = self.clock()
        if not response.end_of_stream:
            if timing.first_chunk_at is None:
                timing.first_chunk_at = now
            return
        del self._timings[request.request_id]
        usage = response.usage
        first = timing.first_chunk_at
        if first is None:
            if usage is None:
                return  # one end call and no usage: the body may never have come
            first = now
        if not response.headers.get(":status", "").startswith("2"):
            return
        streamed = request.stream or response.headers.get("content-type", "").startswith(_SSE)
        ttft = (first if streamed else now) - timing.sent_at
        tokens = usage.completion_tokens if usage is not None else 0
        tpot = (now - first) / (tokens - 1) if streamed and tokens > 1 else None
        self._record(request, timing, ttft, tpot)

    def response_complete(
        self,
        request: InferenceRequest,
        endpoint: Endpoint,  # noqa: ARG002 - protocol
    ) -> None:
        self._timings.pop(request.request_id, None)

    def _record(
        self, request: InferenceRequest, timing: _Timing, ttft: float, tpot: float | None
    ) -> None:
        m = self.metrics
        labels = (request.incoming_model or request.target_model, request.target_model)
        m.ttft.labels(*labels).observe(ttft)
        m.gauge.labels(*labels, "ttft").set(ttft)
        _judge(m, labels, "ttft", ttft, timing.ttft_slo)
        if tpot is not None:
            m.tpot.labels(*labels).observe(tpot)
            m.gauge.labels(*labels, "tpot").set(tpot)
            _judge(m, labels, "tpot", tpot, timing.tpot_slo)


def _judge(
    m: RequestLatencyMetrics, labels: tuple[str, str], kind: str, seconds: float, slo: float | None
) -> None:
    if slo is None:
        return
    violated = seconds > slo
    if violated:
        m.slo_violations.labels(*labels, kind).inc()
    m.gauge.labels(*labels, f"{kind}_slo_violation").set(1.0 if violated else 0.0)
