"""Envoy's ext_proc message sequencing for one HTTP request, independent of gRPC.

`Stream.handle` takes each `ProcessingRequest` in arrival order and returns the replies to send.
The rules (Envoy 1.40, see reference/feasibility.md §1.3 and upstream-gie.md §1.2):

* FULL_DUPLEX_STREAMED request body: Envoy sends headers and every body chunk without waiting.
  The headers reply is held until the body ends (a chunk with `end_of_stream`, or trailers); then
  the exchange decides, and the replies go out in Envoy's required order: headers, the body in
  chunks of at most 62,000 bytes, then trailers. When trailers follow, the last body chunk must
  NOT carry `end_of_stream`, or the request hangs. Chunks after the first end of stream are
  ignored (upstream issue #2988: a duplicate end-of-stream chunk corrupted large bodies).
* BUFFERED request body: the headers are answered at once (empty), and the decision goes on the
  reply to the single buffered body message, with an optional replacement body.
* A header-only request (headers with `end_of_stream`, e.g. a GET), or a filter that sends no
  body (mode NONE): decided and answered from the headers alone.
* An exchange may answer the request itself (`RequestVerdict.answer`) in any of these phases: the
  reply is then one `ImmediateResponse` instead of the headers/body replies, nothing goes
  upstream, the stream counts as completed and `answered` tells the servicer to end it.
* A second request headers message, or headers after the request was decided (a buffered
  body that came first), is a protocol error (Envoy opens one stream per request): the stream
  aborts with a message (`StreamAbortError`) rather than show the exchange a second request,
  which `Exchange.request`'s once-only contract forbids (it would count it twice). So does a
  request body or trailers before the headers in FULL_DUPLEX_STREAMED mode, and a response message
  before the request was decided (the exchange would see the response end before the request
  it counts, and count it open forever).
* STREAMED request body cannot carry a decision made from the body (Envoy forwards the headers
  before the body ends), so the request passes through undecided and a warning is logged once.
* Response side: headers are answered at once; body chunks go through the exchange and are echoed
  in full-duplex mode (same `end_of_stream`) or replaced/continued otherwise. Response trailers
  end the body: the exchange gets a last, empty chunk, and in full-duplex mode what it returns
  goes out before the trailers reply.
* Skipping the response body (the lean mode, DESIGN §6.1): in STREAMED or BUFFERED response mode
  an exchange with the optional `response_body_wanted()` hook may decline the body at response
  headers. The headers reply then carries `CONTINUE_AND_REPLACE` without a body mutation: Envoy
  forwards the body untouched and sends this stream nothing more; the stream is `released` and
  the servicer ends the call (status OK) at once, so the response flowing back no longer needs
  this process (decide at response headers, then let go: a processor killed mid-answer does not
  touch it). The stream counts as completed (the request was answered) although no response end
  was seen. Never in
  FULL_DUPLEX_STREAMED mode: there Envoy sends body chunks before the headers reply arrives, and
  chunks handed to the processor are dropped when it stops, so the client silently loses SSE
  events (reference/streaming-cost.md §3.4-3.5). In that mode the hook is not even asked.
* Dynamic metadata at the response's end: an exchange with the optional
  `response_dynamic_metadata()` hook is asked once, after its last `response_body` call; the
  metadata goes on the last reply to that message (the last streamed chunk, the body reply, or
  the trailers reply), which Envoy applies before it passes the response's end on.

The body modes come from the `protocol_config` Envoy sends on a stream's first message, falling
back to the server's configured defaults for proxies that do not send it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from igw.common import envoy
from igw.common.envoy import BodyMode, HeaderChanges, Phase, ProcessingRequest, ProcessingResponse
from igw.common.errors import StreamAbortError
from igw.common.extproc._exchange import Exchange, HttpRequest, RequestVerdict

__all__ = ["Stream"]

_log = structlog.get_logger(__name__)
_BUFFERED = (BodyMode.BUFFERED, BodyMode.BUFFERED_PARTIAL)
# Response modes in which Envoy holds each body chunk until it is answered, so the body can be
# declined at response headers without losing a byte. FULL_DUPLEX_STREAMED is left out on purpose.
_BODY_SKIPPABLE = (BodyMode.STREAMED, *_BUFFERED)
_warned_streamed = False

Replies = list[ProcessingResponse]


@dataclass(slots=True)
class _RequestSide:
    headers: Mapping[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    seen: bool = False
    """Its headers came (once: one stream is one HTTP request)."""
    decided: bool = False


@dataclass(slots=True)
class Stream:
    """The sequencing state of one ext_proc stream (one HTTP request)."""

    exchange: Exchange
    request_mode: BodyMode
    response_mode: BodyMode
    completed: bool = False
    """True once the response has ended, its body was skipped, or an immediate response was sent."""
    body_skipped: bool = False
    """The response body was declined at response headers (`CONTINUE_AND_REPLACE`)."""
    answered: bool = False
    """The exchange answered the request itself (an `ImmediateAnswer`): the stream is over."""
    _request: _RequestSide = field(default_factory=_RequestSide)
    _first: bool = True

    @property
    def released(self) -> bool:
        """Nothing more will pass through this stream: the request was answered here, or the
        response body declined. The gRPC call can end now (module docstring)."""
        return self.answered or self.body_skipped

    async def handle(self, message: ProcessingRequest) -> Replies:
        """The replies for one message; raises `InferenceError` for a direct error answer."""
        if self._first:
            self._first = False
            modes = envoy.protocol_body_modes(message)
            if modes is not None:
                self.request_mode, self.response_mode = modes
        kind = message.WhichOneof("request")
        handler = _HANDLERS.get(kind or "")
        if handler is None:
            return []
        return await handler(self, message)

    async def _request_headers(self, message: ProcessingRequest) -> Replies:
        if self._request.seen:
            raise StreamAbortError("request headers sent twice on one ext_proc stream")
        self._request.seen = True
        headers = message.request_headers
        self._request.headers = envoy.LazyHeaders(headers.headers)
        self._request.metadata = envoy.filter_metadata(message)
        if headers.end_of_stream or self.request_mode is BodyMode.NONE:
            verdict = await self._decide(b"", header_only=headers.end_of_stream)
            answer = self._answer(verdict)
            return [_headers_reply(verdict) if answer is None else answer]
        if self.request_mode is BodyMode.FULL_DUPLEX_STREAMED:
            return []  # held until the body has ended
        if self.request_mode is BodyMode.STREAMED:
            _warn_streamed()
        return [envoy.headers_response(Phase.REQUEST)]

    async def _request_body(self, message: ProcessingRequest) -> Replies:
        self._require_headers("request body")
        body = message.request_body
        if self._request.decided or self.request_mode is BodyMode.STREAMED:
            if self.request_mode is BodyMode.FULL_DUPLEX_STREAMED:
                return []  # a chunk after end of stream: ignored on purpose
            return [envoy.body_continue(Phase.REQUEST)]
        self._request.chunks.append(body.body)
        if self.request_mode in _BUFFERED:
            verdict = await self._decide(self._take_body(), header_only=False)
            answer = self._answer(verdict)
            if answer is not None:
                return [answer]
            return [
                envoy.buffered_body_response(
                    Phase.REQUEST,
                    verdict.headers,
                    body=verdict.body,
                    clear_route_cache=verdict.clear_route_cache,
                    dynamic_metadata=verdict.dynamic_metadata,
                )
            ]
        if not body.end_of_stream:
            return []
        return await self._finish_duplex(trailers_follow=False)

    async def _request_trailers(self, _message: ProcessingRequest) -> Replies:
        self._require_headers("request trailers")
        replies: Replies = []
        if self.request_mode is BodyMode.FULL_DUPLEX_STREAMED and not self._request.decided:
            replies = await self._finish_duplex(trailers_follow=True)
        if not self.answered:
            replies.append(envoy.trailers_response(Phase.REQUEST))
        return replies

    async def _finish_duplex(self, *, trailers_follow: bool) -> Replies:
        original = self._take_body()
        verdict = await self._decide(original, header_only=False)
        answer = self._answer(verdict)
        if answer is not None:
            return [answer]
        body = original if verdict.body is None else verdict.body
        return [
            _headers_reply(verdict),
            *envoy.body_chunks(Phase.REQUEST, body, end_of_stream=not trailers_follow),
        ]

    def _take_body(self) -> bytes:
        chunks = self._request.chunks
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._request.chunks = []
        return body

    def _require_headers(self, what: str) -> None:
        """Full duplex has no request without its headers first: the headers reply would answer
        a message never sent (other modes allow `request_header_mode: SKIP`)."""
        if self.request_mode is BodyMode.FULL_DUPLEX_STREAMED and not self._request.seen:
            raise StreamAbortError(f"{what} before the request headers on an ext_proc stream")

    def _require_decided(self, what: str) -> None:
        """No response before the request went upstream: Envoy forwards it only once decided
        (but in STREAMED mode, where it passes undecided, and without request headers at all)."""
        request = self._request
        if request.seen and not request.decided and self.request_mode is not BodyMode.STREAMED:
            raise StreamAbortError(f"{what} before the request was decided on an ext_proc stream")

    async def _decide(self, body: bytes, *, header_only: bool) -> RequestVerdict:
        if self._request.decided:
            # `Exchange.request` is called once per stream; a second call would count twice.
            raise StreamAbortError("request headers after the request was decided")
        self._request.decided = True
        request = HttpRequest(
            headers=self._request.headers,
            body=body,
            header_only=header_only,
            body_mode=self.request_mode,
            metadata=self._request.metadata,
        )
        verdict = await self.exchange.request(request)
        if verdict.body is not None:
            length = ("content-length", str(len(verdict.body)))
            changes = HeaderChanges(
                set=(*verdict.headers.set, length), remove=verdict.headers.remove
            )
            verdict = RequestVerdict(
                changes,
                verdict.body,
                verdict.dynamic_metadata,
                verdict.clear_route_cache,
                verdict.answer,
            )
        return verdict

    def _answer(self, verdict: RequestVerdict) -> ProcessingResponse | None:
        """The `ImmediateResponse` for a verdict that answers the client itself, else None."""
        answer = verdict.answer
        if answer is None:
            return None
        self.completed = self.answered = True
        return envoy.immediate_response(answer.status, answer.body, answer.headers)

    async def _response_headers(self, message: ProcessingRequest) -> Replies:
        self._require_decided("response headers")
        headers = message.response_headers
        if message.HasField("metadata_context"):
            self.exchange.response_metadata(envoy.filter_metadata(message))
        changes = await self.exchange.response_headers(
            envoy.headers_of(headers.headers), headers.end_of_stream
        )
        if headers.end_of_stream:
            self.completed = True
        elif self._declines_body():
            self.completed = self.body_skipped = True
            return [envoy.headers_response(Phase.RESPONSE, changes, skip_body=True)]
        return [envoy.headers_response(Phase.RESPONSE, changes)]

    def _declines_body(self) -> bool:
        """Whether to skip the response body; never in full-duplex mode (module docstring)."""
        if self.response_mode not in _BODY_SKIPPABLE:
            return False
        return not self.exchange.response_body_wanted()

    async def _response_body(self, message: ProcessingRequest) -> Replies:
        self._require_decided("response body")
        if self.body_skipped:
            # Envoy sends nothing after CONTINUE_AND_REPLACE; should a chunk come, let it pass.
            return [envoy.body_continue(Phase.RESPONSE)]
        body = message.response_body
        # Read once: each access to a protobuf bytes field makes a new object, and the identity
        # check below is how an exchange says "unchanged".
        chunk = body.body
        end = body.end_of_stream or self.response_mode in _BUFFERED
        out = await self.exchange.response_body(chunk, end)
        ended_here = end and not self.completed
        self.completed = self.completed or end
        if self.response_mode is BodyMode.FULL_DUPLEX_STREAMED:
            replies = list(envoy.body_chunks(Phase.RESPONSE, out, end_of_stream=body.end_of_stream))
        elif out is chunk:
            replies = [envoy.body_continue(Phase.RESPONSE)]
        else:
            replies = [envoy.buffered_body_response(Phase.RESPONSE, body=out)]
        if ended_here:
            self._attach_end_metadata(replies)
        return replies

    async def _response_trailers(self, _message: ProcessingRequest) -> Replies:
        self._require_decided("response trailers")
        replies: Replies = []
        ended_here = not self.completed
        if ended_here:
            self.completed = True
            out = await self.exchange.response_body(b"", True)
            if out and self.response_mode is BodyMode.FULL_DUPLEX_STREAMED:
                # Bytes the exchange held back until the end still go out, before the trailers;
                # the body stays open for them.
                replies.extend(envoy.body_chunks(Phase.RESPONSE, out, end_of_stream=False))
        replies.append(envoy.trailers_response(Phase.RESPONSE))
        if ended_here:
            self._attach_end_metadata(replies)
        return replies

    def _attach_end_metadata(self, replies: Replies) -> None:
        """Puts what the exchange has for the response's end on the last reply (docstring)."""
        metadata = self.exchange.response_dynamic_metadata()
        if metadata:
            envoy.with_dynamic_metadata(replies[-1], metadata)


_HANDLERS: dict[str, Callable[[Stream, ProcessingRequest], Awaitable[Replies]]] = {
    "request_headers": Stream._request_headers,
    "request_body": Stream._request_body,
    "request_trailers": Stream._request_trailers,
    "response_headers": Stream._response_headers,
    "response_body": Stream._response_body,
    "response_trailers": Stream._response_trailers,
}


def _headers_reply(verdict: RequestVerdict) -> ProcessingResponse:
    """The request headers reply of `verdict`, built once per verdict object.

    Shared by every stream the verdict is handed to: a request headers reply is only ever
    serialised after this, never changed (end-of-response metadata goes on response replies).
    """
    reply = verdict._reply
    if reply is None:
        reply = envoy.headers_response(
            Phase.REQUEST,
            verdict.headers,
            clear_route_cache=verdict.clear_route_cache,
            dynamic_metadata=verdict.dynamic_metadata,
        )
        object.__setattr__(verdict, "_reply", reply)  # a memo on a frozen value
    return reply


def _warn_streamed() -> None:
    global _warned_streamed  # noqa: PLW0603 - a once-per-process warning
    if not _warned_streamed:
        _warned_streamed = True
        _log.warning(
            "request_body_mode STREAMED cannot route on the body; requests pass through "
            "undecided. Use FULL_DUPLEX_STREAMED or BUFFERED."
        )
