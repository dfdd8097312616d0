"""The BBR's per-request logic: decode the body once, run the plugins, set the headers.

One `BodyRouter` serves every stream; it holds nothing per request, so each stream's exchange is
the router itself. The body is decoded once, for the union of the fields every plugin declared,
and never re-serialised: the BBR only changes headers, so the bytes Envoy forwards are the bytes
the client sent.

Requests the BBR leaves alone: header-only requests (a GET) and empty bodies, except the OpenAI
models requests (`GET /v1/models`, `GET /v1/models/{id}`), which a `ModelsEndpoint` answers
itself unless `--serve-models-endpoint=false` (igw beyond upstream; see `igw.bbr.models`). A
body that is not one JSON object is answered with 400 `inference error: BadRequest - failed to
parse request body: ...`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import structlog
from opentelemetry.trace import Span

from igw.bbr.metrics import BbrMetrics
from igw.bbr.models import ModelsEndpoint
from igw.bbr.plugins import Mutations, RequestPlugin
from igw.common.envoy import HeaderChanges
from igw.common.extproc import (
    PASS_THROUGH,
    HttpRequest,
    PassThroughExchange,
    RequestVerdict,
    StreamInfo,
)
from igw.common.openai import FieldDecoder
from igw.common.telemetry import logging as igw_logging

__all__ = ["BodyRouter"]

_log = structlog.get_logger(__name__)
_VERDICTS_MAX = 1024


class BodyRouter(PassThroughExchange):
    """Runs the configured request plugins over each request body."""

    def __init__(
        self,
        plugins: Sequence[RequestPlugin],
        metrics: BbrMetrics,
        models: ModelsEndpoint | None = None,
    ) -> None:
        self._plugins = tuple(plugins)
        self._metrics = metrics
        self._models = models
        self._decoder = FieldDecoder(f for p in self._plugins for f in p.fields)
        self._timers = tuple(
            metrics.plugin_duration.labels("request", p.type_name, p.name) for p in self._plugins
        )
        self._verdicts: dict[tuple[Any, ...], RequestVerdict] = {}

    def exchange(self, stream: StreamInfo) -> BodyRouter | _TracedExchange:
        """The `ExchangeFactory` for the ext_proc servicer."""
        if stream.span is None:
            return self
        return _TracedExchange(self, stream.span)

    async def request(self, request: HttpRequest) -> RequestVerdict:
        if request.header_only or not request.body:
            return self._without_body(request)
        fields = self._decoder.decode(request.body)
        out = Mutations()
        self._run_plugins(fields, request.headers, out)
        self._metrics.success.inc()
        if igw_logging.enabled(igw_logging.VERBOSE):
            _log.info("request routed", path=request.path, headers=out.set, removed=out.remove)
        return self._verdict(tuple(out.set.items()), tuple(out.remove))

    def _verdict(
        self, changed: tuple[tuple[str, str], ...], removed: tuple[str, ...]
    ) -> RequestVerdict:
        """One verdict per distinct header change: the serving core builds its Envoy reply
        once per verdict object, and most requests name one of a few models."""
        key = (changed, removed)
        verdict = self._verdicts.get(key)
        if verdict is None:
            if len(self._verdicts) >= _VERDICTS_MAX:
                self._verdicts.clear()  # client-chosen values: bounded, start over
            verdict = self._verdicts[key] = RequestVerdict(HeaderChanges(changed, removed))
        return verdict

    def _without_body(self, request: HttpRequest) -> RequestVerdict:
        """Passes through, unless it is a models request the `ModelsEndpoint` answers."""
        if not request.header_only or self._models is None:
            return PASS_THROUGH
        answer = self._models.answer(request.headers)
        if answer is None:
            return PASS_THROUGH
        if igw_logging.enabled(igw_logging.VERBOSE):
            _log.info("models request answered", path=request.path, status=answer.status)
        return RequestVerdict(answer=answer)

    def _run_plugins(
        self, fields: Mapping[str, msgspec.Raw], headers: Mapping[str, str], out: Mutations
    ) -> None:
        for plugin, timer in zip(self._plugins, self._timers, strict=True):
            start = time.perf_counter()
            plugin.process_request(fields, headers, out)
            timer.observe(time.perf_counter() - start)


class _TracedExchange(PassThroughExchange):
    """The router for one traced stream: records what was decided on the stream's span."""

    def __init__(self, router: BodyRouter, span: Span) -> None:
        self._router = router
        self._span = span

    async def request(self, request: HttpRequest) -> RequestVerdict:
        verdict = await self._router.request(request)
        for key, value in verdict.headers.set:
            self._span.set_attribute(f"bbr.header.{key}", value)
        if verdict.answer is not None:
            self._span.set_attribute("bbr.answer.status", verdict.answer.status)
        return verdict
