"""`EppExchange`: one HTTP request through the EPP, as the ext_proc serving core drives it.

`Exchanges` is the `ExchangeFactory` the ext_proc servicer calls once per stream; it holds what
every exchange shares (the director, the request-control hooks, the parser, the metrics, the
response sampling). The exchange holds the Envoy conversation and the request's
`RequestLifecycle`: at the request it asks the director for a `Decision` and records it (the
request is dispatched: `inference_objective_running_requests` goes up); the rest is the response
side (§1.9):

* response headers: the status (not 200 counts a `ModelServerError`), whether the body is SSE
  (content type `text/event-stream`, or the request's `"stream": true`), and the served-endpoint
  metadata the data plane may send (`envoy.lb/x-gateway-destination-endpoint-served`). Upstream
  adds a debug header `x-went-into-resp-headers: true` to every response (quirk #12); igw does
  not: it tells clients nothing and costs a header mutation per response.
* response body: usage is read as the chunks pass (`UsageReader`: JSON at the end, SSE per
  chunk), token metrics recorded when usage is found; latency, size and NTPOT at the end. Chunks
  are forwarded as they come, except when the model was rewritten: then the model name is
  written back (`"model":"<target>"` -> the client's name), per chunk for SSE as upstream, and
  over the whole body for JSON (buffered to the end, so a split pattern is still replaced).
* lean mode (Envoy's response body mode STREAMED, DESIGN §6.1): at response headers the core asks
  `response_body_wanted`. The body is read when the model was rewritten (it must be written
  back), when ResponseBody plugins are configured, when the saturation detector counts requests
  in flight (`follow_responses`: a `concurrency-detector` gating admission or flow control must
  see each response end, or a streamed answer would leave its slot at the first byte), or when
  the response falls in the director's sampled fraction (`--response-sample-rate`, for usage,
  latency and size metrics); otherwise it is skipped, and the request finishes right there:
  the running gauge and the ResponseComplete hooks (in-flight accounting) count it done once
  its response has started. Trade-off: an
  endpoint's in-flight count then covers requests waiting for their first byte, not the ones
  still decoding; the model server's own running and waiting counts, scraped every 50 ms, carry
  that load to the scorers. Nothing leaks: a skipped request is never left in flight. In
  compatible mode (FULL_DUPLEX_STREAMED) the hook is never asked and every body is read.
* response plugins (§6), only when configured: ResponseHeader plugins run at response headers,
  after the served-endpoint metadata is known (the core hands it over just before), on a
  `Response` holding the headers and that metadata; the header changes they make go back to
  the client. ResponseBody plugins run per chunk, after usage is read, and exactly once with
  `end_of_stream` (at the body's end, or at `close` when the client went away first); the
  dynamic metadata they set is handed to the core (`response_dynamic_metadata`), which puts it
  on the last body reply. Configured ResponseBody plugins make the lean mode read every body.
  A request without response plugins allocates and calls nothing for them.
* eviction (flow control, `interruption`): a sheddable request flow control dispatched has a
  future that resolves with the error ending it mid-stream; the ext_proc servicer races it
  against Envoy's next message and answers with that error.
* `close`: always last; `_finish` runs once per request, whenever its stream ends (response
  complete, error, client gone): the running gauge goes down and the ResponseComplete hooks
  (in-flight accounting) run for the endpoint that served it, also when the client went away
  (`completed=False`).

Owned by one ext_proc stream; only the event loop touches it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from opentelemetry.trace import Span

from igw.common.envoy import NO_CHANGES, HeaderChanges
from igw.common.errors import InferenceError
from igw.common.extproc import HttpRequest, RequestVerdict, StreamInfo
from igw.epp.endpoints import Endpoint, InferenceRequest
from igw.epp.framework.parsing import Parser, UsageReader
from igw.epp.framework.response import Response
from igw.epp.requestcontrol import RequestControl
from igw.epp.requestpath.director import Director
from igw.epp.requestpath.headers import DESTINATION_SERVED, LB_NAMESPACE
from igw.epp.requestpath.lifecycle import RequestLifecycle
from igw.epp.requestpath.metrics import RequestMetrics

__all__ = ["EppExchange", "Exchanges", "ModelBackRewrite", "header_changes"]

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Exchanges:
    """The `ExchangeFactory`: one `EppExchange` per stream, and what they all share."""

    director: Director
    request_control: RequestControl
    parser: Parser
    metrics: RequestMetrics
    response_sample_rate: float = 1.0
    """The share of responses read for usage and latency when reading is optional (lean)."""
    follow_responses: bool = False
    """Lean mode reads every body to its end: the saturation detector counts requests in flight
    (`concurrency-detector`), so a request must stay in flight until its response ends."""
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        rate = self.response_sample_rate
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"response sample rate must be in [0, 1], got {rate}")

    def __call__(self, stream: StreamInfo) -> EppExchange:
        return EppExchange(self, stream.span)

    def sample_response(self) -> bool:
        """Whether this response is in the sampled fraction (see `response_sample_rate`)."""
        rate = self.response_sample_rate
        return rate >= 1.0 or (rate > 0.0 and self.rng.random() < rate)


class ModelBackRewrite:
    """Replaces `"model":"<target>"` (and `"model": "<target>"`) with the client's model name."""

    __slots__ = ("_pairs",)

    def __init__(self, target: str, incoming: str) -> None:
        old, new = orjson.dumps(target), orjson.dumps(incoming)
        self._pairs = (
            (b'"model":' + old, b'"model":' + new),
            (b'"model": ' + old, b'"model": ' + new),
        )

    def __call__(self, data: bytes) -> bytes:
        for old, new in self._pairs:
            if old in data:
                data = data.replace(old, new)
        return data


class EppExchange:
    """The `Exchange` of one stream; see the module docstring."""

    __slots__ = (
        "_body_args", "_buffer", "_end_metadata", "_interruption", "_metadata", "_reader",
        "_response", "_rewrite", "_shared", "_span", "life",
    )  # fmt: skip

    def __init__(self, shared: Exchanges, span: Span | None) -> None:
        self._shared = shared
        self._span = span
        self.life = RequestLifecycle(received_at=shared.clock())
        self._reader: UsageReader | None = None
        self._rewrite: ModelBackRewrite | None = None
        self._buffer: list[bytes] = []
        self._metadata: Mapping[str, Any] | None = None
        self._response: Response | None = None
        """Set only when ResponseBody plugins are configured, until their end-of-stream call."""
        self._end_metadata: Mapping[str, Mapping[str, Any]] | None = None
        self._body_args: tuple[InferenceRequest, Endpoint | None] | None = None
        """The request and served endpoint, fixed once the body starts (not re-found per chunk)."""
        self._interruption: asyncio.Future[InferenceError] | None = None

    async def request(self, request: HttpRequest) -> RequestVerdict:
        decision = await self._shared.director.decide(request, self._span)
        life = self.life
        life.record(decision)
        self._shared.metrics.running.labels(life.incoming_model).inc()
        if life.model_rewritten:
            self._rewrite = ModelBackRewrite(life.target_model, life.incoming_model)
        control = self._shared.request_control
        if control.has_response_body:
            self._response = Response(life.request_id, {}, start_of_stream=True)
        if control.holding is not None and life.inference is not None:
            self._interruption = control.holding.interruption(life.inference)
        return decision.verdict

    def interruption(self) -> asyncio.Future[InferenceError] | None:
        """Resolves with the error that ends this request early (flow control's eviction)."""
        return self._interruption

    def response_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Filter metadata Envoy sent with the response headers (the served endpoint)."""
        self._metadata = metadata
        lb = metadata.get(LB_NAMESPACE)
        if isinstance(lb, Mapping):
            served = lb.get(DESTINATION_SERVED)
            if isinstance(served, str):
                self.life.served_endpoint = served
                if self._span is not None:
                    self._span.set_attribute("igw.served_endpoint", served)

    async def response_headers(
        self, headers: Mapping[str, str], end_of_stream: bool
    ) -> HeaderChanges:
        life = self.life
        life.status = headers.get(":status", "")
        if life.status != "200" and life.dispatched:
            self._shared.metrics.errors.labels(
                life.incoming_model, life.target_model, "ModelServerError"
            ).inc()
        if "text/event-stream" in headers.get("content-type", ""):
            life.response_streaming = True
        changes = NO_CHANGES
        response = self._response
        if response is not None:
            response.headers = dict(headers)
            response.req_metadata = self._metadata or {}
        if self._shared.request_control.has_response_header and life.dispatched:
            changes = self._run_header_plugins(headers, response)
        if end_of_stream:
            self._complete()
        return changes

    def _run_header_plugins(
        self, headers: Mapping[str, str], response: Response | None
    ) -> HeaderChanges:
        life = self.life
        if response is None:
            response = Response(life.request_id, dict(headers), self._metadata or {})
        self._shared.request_control.response_header(self._plugin_request(), response, life.served)
        return header_changes(headers, response.headers)

    def _plugin_request(self) -> InferenceRequest:
        """The scheduled request; a header-only one (never parsed) gets a bare stand-in."""
        life = self.life
        if life.inference is not None:
            return life.inference
        return InferenceRequest(life.request_id, life.target_model, {})

    def response_body_wanted(self) -> bool:
        """Lean mode: read the body only when needed; else finish the request now (docstring)."""
        life = self.life
        if self._rewrite is not None or self._response is not None:
            return True
        if self._shared.follow_responses or self._shared.sample_response():
            return True
        life.body_skipped = True
        self._finish()
        return False

    async def response_body(self, chunk: bytes, end_of_stream: bool) -> bytes:
        life = self.life
        life.response_bytes += len(chunk)
        streaming = life.request_stream or life.response_streaming
        reader = self._reader
        if reader is None:
            reader = self._reader = self._shared.parser.usage_reader()
        if reader.usage is None:
            usage = reader.feed(chunk, end_of_stream=end_of_stream, streaming=streaming)
            if usage is not None:
                life.usage = usage
                self._shared.metrics.record_usage(life.incoming_model, life.target_model, usage)
        out = chunk if self._rewrite is None else self._rewritten(chunk, end_of_stream, streaming)
        response = self._response
        if response is not None:
            self._run_body_plugins(response, end_of_stream)
        if end_of_stream:
            self._complete()
        return out

    def _run_body_plugins(self, response: Response, end_of_stream: bool) -> None:
        life = self.life
        args = self._body_args
        if args is None:
            args = self._body_args = (self._plugin_request(), life.served)
        response.end_of_stream = end_of_stream
        response.usage = life.usage
        self._shared.request_control.response_body(args[0], response, args[1])
        response.start_of_stream = False
        if end_of_stream:
            self._response = None  # exactly one end-of-stream call
            self._end_metadata = response.dynamic_metadata

    def response_dynamic_metadata(self) -> Mapping[str, Mapping[str, Any]] | None:
        """What the ResponseBody plugins set, for the core to put on the last body reply."""
        return self._end_metadata

    def _rewritten(self, chunk: bytes, end_of_stream: bool, streaming: bool) -> bytes:
        rewrite = self._rewrite
        assert rewrite is not None  # noqa: S101 - checked by the caller
        if streaming:
            return rewrite(chunk)
        self._buffer.append(chunk)
        if not end_of_stream:
            return b""
        body = b"".join(self._buffer)
        self._buffer = []
        return rewrite(body)

    def _complete(self) -> None:
        life = self.life
        if life.response_done or not life.dispatched:
            return
        life.response_done = True
        shared = self._shared
        shared.metrics.record_completion(
            life.incoming_model,
            life.target_model,
            shared.clock() - life.received_at,
            life.response_bytes,
            life.usage,
        )

    def close(self, completed: bool) -> None:  # noqa: ARG002 - the lifecycle knows
        response = self._response
        if response is not None and self.life.dispatched:
            # The body never ended (client gone, upstream error): the end call still comes, as
            # upstream's; its metadata has no reply left to ride on.
            self._run_body_plugins(response, end_of_stream=True)
        self._finish()

    def _finish(self) -> None:
        """Runs once per request when its stream ends; see the module docstring."""
        life = self.life
        if life.finished:
            return
        life.finished = True
        if life.dispatched:
            self._shared.metrics.running.labels(life.incoming_model).dec()
        served = life.served
        if life.inference is None or served is None:
            return
        try:
            self._shared.request_control.response_complete(life.inference, served)
        except Exception:
            _log.exception("response_complete_failed", request_id=life.request_id)


def header_changes(before: Mapping[str, str], after: Mapping[str, str]) -> HeaderChanges:
    """What ResponseHeader plugins changed in the headers; pseudo-headers are left alone."""
    changed = [
        (name.lower(), str(value))
        for name, value in after.items()
        if not name.startswith(":") and before.get(name) != value
    ]
    removed = [name for name in before if name not in after and not name.startswith(":")]
    if not changed and not removed:
        return NO_CHANGES
    return HeaderChanges(set=tuple(changed), remove=tuple(removed))
