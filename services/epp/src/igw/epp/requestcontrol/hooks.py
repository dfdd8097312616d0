"""The request-control hooks around a scheduling cycle (§6): admission, PrepareData, Admit,
PreRequest, the response plugins and response completion, each plugin call timed into the plugin
latency histogram under upstream's extension point names.

The Director calls these in upstream's order: `admit`, the one admission step (the pool's
`Admission`: the legacy shedding rule, 429, or flow control; then the producers in dependency
order, a failing producer logged and skipped; then the Admit plugins, any denial -> 500 `request
cannot be admitted`), the scheduler, `pre_request`; the exchange calls `response_complete` once
the response has ended.
The exchange calls `response_header` (extension point `ResponseReceived`) when the response
headers arrive and `response_body` (`ResponseStreaming`) per body chunk and at the end; a
failing response plugin is logged and skipped, never failing a response already on its way.
Callers check `has_response_header` / `has_response_body` first, so requests pay nothing for
hooks nobody configured.

An admission that waits (flow control, `HoldingAdmission`) is set with `use_admission`; it is
then told of each scheduled request (after the PreRequest plugins) and of each completion (after
the ResponseComplete plugins), and `holding` is what the exchange asks for its interruption
future. Without one, those calls cost one `None` check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

import structlog

from igw.common.errors import InternalError, ServiceUnavailableError
from igw.epp.endpoints import Endpoint, EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.framework.metrics import SchedulerMetrics
from igw.epp.framework.requestcontrol import (
    Admitter,
    DataProducer,
    PreRequest,
    ResponseBodyProcessor,
    ResponseComplete,
    ResponseHeaderProcessor,
)
from igw.epp.framework.response import Response
from igw.epp.framework.results import SchedulingResult
from igw.epp.requestcontrol.admission import Admission, HoldingAdmission

__all__ = ["NO_CANDIDATES", "RequestControl"]

NO_CANDIDATES = "failed to find endpoint candidates for serving the request"

_log = structlog.get_logger(__name__)


def _timed(metrics: SchedulerMetrics, point: str, plugins: Sequence[Any]) -> tuple[Any, ...]:
    return tuple((p, metrics.plugin_timer(point, p.type_name, p.name)) for p in plugins)


class RequestControl:
    """The hook plugins of one configuration; `producers` must already be in dependency order.

    `admission` runs first in `admit`; None admits every request (tests of the other hooks).
    """

    def __init__(
        self,
        metrics: SchedulerMetrics,
        *,
        admission: Admission | None = None,
        producers: Sequence[DataProducer] = (),
        admitters: Sequence[Admitter] = (),
        pre_request: Sequence[PreRequest] = (),
        response_complete: Sequence[ResponseComplete] = (),
        response_header: Sequence[ResponseHeaderProcessor] = (),
        response_body: Sequence[ResponseBodyProcessor] = (),
    ) -> None:
        self.admission = admission
        self.holding: HoldingAdmission | None = None
        self.producers = tuple(producers)
        self.admitters = tuple(admitters)
        self.pre_request_plugins = tuple(pre_request)
        self.response_complete_plugins = tuple(response_complete)
        self.response_header_plugins = tuple(response_header)
        self.response_body_plugins = tuple(response_body)
        self.has_response_header = bool(response_header)
        self.has_response_body = bool(response_body)
        """Whether the exchange must read every response body (the lean mode asks this)."""
        self._producers: tuple[tuple[DataProducer, Callable[[float], None]], ...] = _timed(
            metrics, "PrepareData", producers
        )
        self._admitters: tuple[tuple[Admitter, Callable[[float], None]], ...] = _timed(
            metrics, "AdmitRequest", admitters
        )
        self._pre: tuple[tuple[PreRequest, Callable[[float], None]], ...] = _timed(
            metrics, "PreRequest", pre_request
        )
        self._complete: tuple[tuple[ResponseComplete, Callable[[float], None]], ...] = _timed(
            metrics, "ResponseComplete", response_complete
        )
        self._headers: tuple[tuple[ResponseHeaderProcessor, Callable[[float], None]], ...] = _timed(
            metrics, "ResponseReceived", response_header
        )
        self._bodies: tuple[tuple[ResponseBodyProcessor, Callable[[float], None]], ...] = _timed(
            metrics, "ResponseStreaming", response_body
        )

    def use_admission(self, admission: HoldingAdmission) -> None:
        """Replaces the admission with one that waits (flow control)."""
        self.admission = self.holding = admission

    async def admit(
        self,
        request: InferenceRequest,
        state: CycleState,
        candidates: Sequence[EndpointState],
        *,
        locate: Callable[[], Sequence[EndpointState]] | None = None,
        dry_run: bool = False,
    ) -> Sequence[EndpointState]:
        """The one admission step; returns the candidates to schedule over, raises the
        `InferenceError` a request is refused with.

        As upstream's director: the pool's admission first (so a sheddable request finding no
        candidates is shed, 429, as a saturated pool would shed it), then a request without
        candidates is refused (503), then the producers and the Admit plugins. After an
        admission that waited, the candidates are located again (`locate`): the pool may have
        changed meanwhile (scale from zero). `dry_run` (Explain) never waits in a queue.
        """
        admission = self.admission
        if admission is not None:
            if self.holding is None:
                await admission.admit(request, candidates)
            elif not dry_run:
                await admission.admit(request, candidates)
                if locate is not None:
                    candidates = locate()
        if not candidates:
            raise ServiceUnavailableError(NO_CANDIDATES)
        self.prepare_data(request, state, candidates)
        self.run_admitters(request, state, candidates)
        return candidates

    def prepare_data(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> None:
        for producer, observe in self._producers:
            started = perf_counter()
            try:
                producer.prepare_data(request, state, endpoints)
            except Exception:
                _log.exception("prepare_data_failed", plugin=producer.name)
            observe(perf_counter() - started)

    def run_admitters(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> None:
        """Raises `InternalError` (500, upstream's message) when any admitter denies."""
        for admitter, observe in self._admitters:
            started = perf_counter()
            reason = admitter.admit_request(request, state, endpoints)
            observe(perf_counter() - started)
            if reason is not None:
                _log.info("request_denied", plugin=admitter.name, reason=reason)
                raise InternalError("request cannot be admitted")

    def pre_request(
        self, request: InferenceRequest, state: CycleState, result: SchedulingResult
    ) -> None:
        for plugin, observe in self._pre:
            started = perf_counter()
            plugin.pre_request(request, state, result)
            observe(perf_counter() - started)
        if self.holding is not None:
            self.holding.dispatched(request)

    def response_complete(self, request: InferenceRequest, endpoint: Endpoint) -> None:
        try:
            for plugin, observe in self._complete:
                started = perf_counter()
                plugin.response_complete(request, endpoint)
                observe(perf_counter() - started)
        finally:
            if self.holding is not None:
                self.holding.finished(request)

    def response_header(
        self, request: InferenceRequest, response: Response, endpoint: Endpoint | None
    ) -> None:
        for plugin, observe in self._headers:
            started = perf_counter()
            try:
                plugin.response_header(request, response, endpoint)
            except Exception:
                _log.exception("response_header_failed", plugin=plugin.name)
            observe(perf_counter() - started)

    def response_body(
        self, request: InferenceRequest, response: Response, endpoint: Endpoint | None
    ) -> None:
        for plugin, observe in self._bodies:
            started = perf_counter()
            try:
                plugin.response_body(request, response, endpoint)
            except Exception:
                _log.exception("response_body_failed", plugin=plugin.name)
            observe(perf_counter() - started)
