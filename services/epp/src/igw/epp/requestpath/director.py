"""The Director: from a request's headers and body to its destination (§3.1), and its end.

    control headers -> parse body -> target model -> priority -> candidates (subset hint; none:
    503) -> admission (sheddable: 429 when saturated) -> PrepareData -> Admit -> schedule (none:
    429) -> PreRequest -> destination header + `envoy.lb` metadata, body untouched unless the
    model is rewritten

A header-only request (a GET) skips all of it and goes to a uniformly random endpoint of the
pool (quirk #11, kept); with no endpoints at all it gets 500 `no pods available in datastore`.
Every `InferenceError` raised here is counted in `inference_objective_request_error_total` and
answered by the serving core with its status and upstream's body.

`finish` runs once per request, when its stream ends for any reason (response complete, error,
client gone): the running-requests gauge goes down and the ResponseComplete hooks (in-flight
accounting) run for the endpoint that served it. The hooks run for every request that was
scheduled, also one refused after its PreRequest hooks counted it (a body that cannot be
rewritten: 500), as upstream runs them whenever a pod was picked and the response never
completed. The Director is shared by every stream and holds no per-request state; that lives
in `RequestLifecycle`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

import structlog
from opentelemetry import trace
from opentelemetry.trace import Span, Tracer

from igw.common.errors import InferenceError, InternalError, ServiceUnavailableError
from igw.common.extproc import HttpRequest, RequestVerdict, StreamInfo
from igw.common.telemetry.tracing import inject_headers
from igw.epp.endpoints import EndpointSource, EndpointState, InferenceRequest
from igw.epp.parsers.contracts import Parser
from igw.epp.requestpath import headers as control_headers
from igw.epp.requestpath.candidates import subset_candidates
from igw.epp.requestpath.exchange import EppExchange
from igw.epp.requestpath.headers import ControlHeaders, destination_metadata, request_changes
from igw.epp.requestpath.lifecycle import RequestLifecycle
from igw.epp.requestpath.metrics import RequestMetrics
from igw.epp.requestpath.objectives import Objectives, StaticObjectives
from igw.epp.scheduling.admission import Admission
from igw.epp.scheduling.cycle_state import CycleState
from igw.epp.scheduling.request_control import RequestControl
from igw.epp.scheduling.results import SchedulingError, SchedulingResult
from igw.epp.scheduling.scheduler import Scheduler

__all__ = ["NO_CANDIDATES", "NO_PODS", "Director"]

_log = structlog.get_logger(__name__)
NO_PODS = "no pods available in datastore"
NO_CANDIDATES = "failed to find endpoint candidates for serving the request"


class Director:
    """The request pipeline of one EPP; see the module docstring."""

    def __init__(
        self,
        *,
        source: EndpointSource,
        scheduler: Scheduler,
        request_control: RequestControl,
        admission: Admission,
        parser: Parser,
        metrics: RequestMetrics,
        objectives: Objectives | None = None,
        subset_filter: bool = True,
        tracer: Tracer | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        response_sample_rate: float = 1.0,
    ) -> None:
        if not 0.0 <= response_sample_rate <= 1.0:
            raise ValueError(f"response sample rate must be in [0, 1], got {response_sample_rate}")
        self.source = source
        self.scheduler = scheduler
        self.request_control = request_control
        self.admission = admission
        self.parser = parser
        self.metrics = metrics
        self.objectives = objectives if objectives is not None else StaticObjectives()
        self.subset_filter = subset_filter
        self.tracer = tracer
        self.rng = rng if rng is not None else random.Random()  # noqa: S311 - load spreading
        self.clock = clock
        self.response_sample_rate = response_sample_rate
        """The share of responses read for usage and latency when reading is optional (lean)."""

    def sample_response(self) -> bool:
        """Whether this response is in the sampled fraction (see `response_sample_rate`)."""
        rate = self.response_sample_rate
        return rate >= 1.0 or (rate > 0.0 and self.rng.random() < rate)

    def exchange(self, stream: StreamInfo) -> EppExchange:
        """The `ExchangeFactory` for the ext_proc servicer."""
        return EppExchange(self, stream.span)

    async def handle(
        self, life: RequestLifecycle, request: HttpRequest, span: Span | None
    ) -> RequestVerdict:
        """The verdict for a request; raises `InferenceError` for a direct error answer."""
        control = control_headers.read_control_headers(request.headers)
        life.request_id, life.fairness_id = control.request_id, control.fairness_id
        try:
            if request.header_only:
                return self._header_only(life, control, span)
            return await self._handle_body(life, control, request, span)
        except InferenceError as e:
            self.metrics.errors.labels(life.incoming_model, life.target_model, e.code).inc()
            raise

    def _header_only(
        self, life: RequestLifecycle, control: ControlHeaders, span: Span | None
    ) -> RequestVerdict:
        endpoints = self.source.endpoints()
        if not endpoints:
            raise InternalError(NO_PODS)
        picked = self.rng.choice(endpoints).endpoint
        life.targets = (picked,)
        return self._verdict(life, control, picked.hostport, None, span)

    async def _handle_body(
        self,
        life: RequestLifecycle,
        control: ControlHeaders,
        request: HttpRequest,
        span: Span | None,
    ) -> RequestVerdict:
        parsed = self.parser.parse(request.path, request.body)
        life.incoming_model = parsed.model
        life.target_model = control.model_rewrite or parsed.model
        life.priority = self.objectives.priority(control.objective)
        life.request_stream = parsed.stream
        life.request_bytes = len(request.body)
        inference = InferenceRequest(
            request_id=life.request_id, target_model=life.target_model, headers=request.headers,
            prompt_text=parsed.prompt_text, cache_salt=parsed.cache_salt, priority=life.priority,
            fairness_id=life.fairness_id, size_bytes=life.request_bytes, stream=parsed.stream,
        )  # fmt: skip
        life.inference = inference
        candidates = self._candidates(request)
        await self.admission.admit(inference, candidates)
        result = self._schedule(inference, candidates, span)
        life.targets = tuple(state.endpoint for state in result.targets)
        destination = ",".join(endpoint.hostport for endpoint in life.targets)
        body = None
        if life.target_model != life.incoming_model and self.parser.reads_models:
            body = self.parser.rewrite_model(request.body, parsed, life.target_model)
            life.model_rewritten = True
        self.metrics.requests.labels(
            life.incoming_model, life.target_model, str(life.priority)
        ).inc()
        self.metrics.request_sizes.labels(life.incoming_model, life.target_model).observe(
            life.request_bytes
        )
        return self._verdict(life, control, destination, body, span)

    def _candidates(self, request: HttpRequest) -> Sequence[EndpointState]:
        endpoints = self.source.endpoints()
        if self.subset_filter:
            endpoints = subset_candidates(endpoints, request.metadata)
        if not endpoints:
            raise ServiceUnavailableError(NO_CANDIDATES)
        return endpoints

    def _schedule(
        self, request: InferenceRequest, candidates: Sequence[EndpointState], span: Span | None
    ) -> SchedulingResult:
        if self.tracer is None or span is None or not span.is_recording():
            return self._run_cycle(request, candidates, explain=False)
        parent = trace.set_span_in_context(span)
        with self.tracer.start_as_current_span(
            "gateway.request_orchestration", context=parent
        ) as child:
            child.set_attribute("target_model", request.target_model)
            child.set_attribute("request_prio", request.priority)
            result = self._run_cycle(request, candidates, explain=True)
            _describe(child, result)
            return result

    def _run_cycle(
        self, request: InferenceRequest, candidates: Sequence[EndpointState], *, explain: bool
    ) -> SchedulingResult:
        state = CycleState()
        control = self.request_control
        control.prepare_data(request, state, candidates)
        control.admit(request, state, candidates)
        attempts = self.metrics.scheduler_attempts
        try:
            result = self.scheduler.schedule(request, candidates, state, explain=explain)
        except SchedulingError:
            attempts.labels("failure", request.target_model, "", "", "").inc()
            raise
        if not result.targets:  # a handler that returns no targets instead of raising
            attempts.labels("failure", request.target_model, "", "", "").inc()
            raise SchedulingError("no endpoints available for the given request")
        primary = result.targets[0].endpoint
        attempts.labels("success", request.target_model, primary.name, "", str(primary.port)).inc()
        control.pre_request(request, state, result)
        return result

    def _verdict(
        self,
        life: RequestLifecycle,
        control: ControlHeaders,
        destination: str,
        body: bytes | None,
        span: Span | None,
    ) -> RequestVerdict:
        extra: list[tuple[str, str]] = []
        if span is not None and span.is_recording():
            span.set_attribute("igw.destination", destination)
            extra.extend(inject_headers(trace.set_span_in_context(span)).items())
        life.dispatched = True
        self.metrics.running.labels(life.incoming_model).inc()
        return RequestVerdict(
            headers=request_changes(control, destination, extra),
            body=body,
            dynamic_metadata=destination_metadata(destination),
            clear_route_cache=True,
        )

    def finish(self, life: RequestLifecycle) -> None:
        """Runs once per request when its stream ends; see the module docstring."""
        if life.finished:
            return
        life.finished = True
        if life.dispatched:
            self.metrics.running.labels(life.incoming_model).dec()
        served = life.served  # set once scheduled, dispatched or not
        if life.inference is None or served is None:
            return
        try:
            self.request_control.response_complete(life.inference, served)
        except Exception:
            _log.exception("response_complete_failed", request_id=life.request_id)


def _describe(span: Span, result: SchedulingResult) -> None:
    """The pick and the primary profile's weighted totals, as span attributes."""
    if result.targets:
        span.set_attribute("igw.endpoint", result.targets[0].endpoint.name)
    explanation = result.explanations.get(result.primary_profile)
    if explanation is not None:
        scores = [
            f"{name}={total:.4f}"
            for name, total in zip(explanation.endpoints, explanation.totals, strict=False)
        ]
        span.set_attribute("igw.scores", ",".join(scores))
