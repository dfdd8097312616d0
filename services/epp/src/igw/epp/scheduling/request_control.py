"""The request-control hooks around a scheduling cycle (§6): PrepareData, Admit, PreRequest and
response completion, each plugin call timed into the plugin latency histogram.

The Director calls these in upstream's order: `prepare_data` (producers in dependency order; a
failing producer is logged and skipped), `admit` (any denial -> 500 `request cannot be
admitted`), the scheduler, `pre_request`, and `response_complete` once the response has ended.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

import structlog

from igw.common.errors import InternalError
from igw.epp.endpoints import Endpoint, EndpointState, InferenceRequest
from igw.epp.scheduling.contracts import Admitter, DataProducer, PreRequest, ResponseComplete
from igw.epp.scheduling.cycle_state import CycleState
from igw.epp.scheduling.metrics import SchedulerMetrics
from igw.epp.scheduling.results import SchedulingResult

__all__ = ["RequestControl"]

_log = structlog.get_logger(__name__)


def _timed(metrics: SchedulerMetrics, point: str, plugins: Sequence[Any]) -> tuple[Any, ...]:
    return tuple((p, metrics.plugin_timer(point, p.type_name, p.name)) for p in plugins)


class RequestControl:
    """The hook plugins of one configuration; `producers` must already be in dependency order."""

    def __init__(
        self,
        metrics: SchedulerMetrics,
        *,
        producers: Sequence[DataProducer] = (),
        admitters: Sequence[Admitter] = (),
        pre_request: Sequence[PreRequest] = (),
        response_complete: Sequence[ResponseComplete] = (),
    ) -> None:
        self.producers = tuple(producers)
        self.admitters = tuple(admitters)
        self.pre_request_plugins = tuple(pre_request)
        self.response_complete_plugins = tuple(response_complete)
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

    def admit(
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

    def response_complete(self, request: InferenceRequest, endpoint: Endpoint) -> None:
        for plugin, observe in self._complete:
            started = perf_counter()
            plugin.response_complete(request, endpoint)
            observe(perf_counter() - started)
