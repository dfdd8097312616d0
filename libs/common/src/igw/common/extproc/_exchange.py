"""What a service implements: one `Exchange` per HTTP request passing through Envoy.

The serving core (`_stream.py`) owns Envoy's message sequencing; an exchange only sees whole,
decoded events and answers with plain values:

* `request(HttpRequest) -> RequestVerdict`: called once, when the request's headers and whole body
  are known (at once for a header-only request). Raising an `InferenceError` answers the client
  directly with that error's status; a verdict with an `ImmediateAnswer` answers it directly with
  any other response (the BBR's `GET /v1/models`). Either way nothing goes upstream, the stream
  ends and no response-side method is called.
* `response_headers(...)`, `response_body(...)`: called only if Envoy is configured to send the
  response side; the defaults pass everything through.
* `close(completed)`: always called last, also when the client went away mid-stream.
* `response_metadata(metadata)`: gets the `metadata_context.filter_metadata` Envoy sends with
  the response headers (by namespace), just before `response_headers`, when it sends any (e.g.
  the EPP's served-endpoint feedback).
* `response_body_wanted() -> bool`: asked just after `response_headers` (unless the
  response has no body) when Envoy's response body mode is STREAMED or BUFFERED. False skips
  the body: `response_body` is never called, the server ends the stream right after the
  headers reply (the response then no longer depends on this process), and `close(True)`
  follows, so whatever "request finished" work the exchange has must not wait for a response
  end it will not see. Never asked in FULL_DUPLEX_STREAMED mode, where skipping loses data.
* `interruption() -> asyncio.Future[InferenceError] | None`: asked before each message is
  awaited; a future that resolves with an error ends the request with it at once, without
  waiting for Envoy's next message (`_servicer.py`). None (the default): nothing to watch.
* `response_dynamic_metadata() -> Mapping[str, Mapping[str, Any]] | None`: asked once,
  just after the `response_body` call that ends the response (a chunk with `end_of_stream`, the
  buffered body, or the empty last chunk response trailers bring). What it returns (namespace
  -> fields) rides on the last reply to that message, so Envoy sets it as dynamic metadata
  before the response's end goes downstream (e.g. the EPP's `request-attribute-reporter`
  cost). Never asked for a skipped or header-only response.

`PassThroughExchange` implements every method as "change nothing" (no metadata wanted, every
body read, nothing to add at the end); services subclass it and override what they need.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry.trace import Span

from igw.common.envoy import NO_CHANGES, BodyMode, HeaderChanges, ProcessingResponse
from igw.common.errors import InferenceError

__all__ = [
    "PASS_THROUGH",
    "Exchange",
    "ExchangeFactory",
    "HttpRequest",
    "ImmediateAnswer",
    "PassThroughExchange",
    "RequestVerdict",
    "StreamInfo",
]


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What is known about an ext_proc stream before its first message is read."""

    span: Span | None
    """The stream's trace span (None when tracing is off): exchanges add attributes to it."""


@dataclass(slots=True)
class HttpRequest:
    """A request as Envoy showed it: header names are lower-case, pseudo-headers included.

    Read-only by convention, not frozen: it is made once per request, and a frozen dataclass's
    `__init__` (an `object.__setattr__` per field) costs 1.6 µs more, measured on this path."""

    headers: Mapping[str, str]
    body: bytes
    header_only: bool
    """True when the request has no body at all (a GET); `body` is then empty."""
    body_mode: BodyMode
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """`metadata_context.filter_metadata` of the headers message, by namespace."""

    @property
    def path(self) -> str:
        return self.headers.get(":path", "")


@dataclass(frozen=True, slots=True)
class ImmediateAnswer:
    """A response Envoy sends the client itself, in place of forwarding the request."""

    status: int
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    """Response headers (e.g. `content-type`); Envoy adds `content-length`."""


@dataclass(frozen=True, slots=True)
class RequestVerdict:
    """How the request continues upstream, or, with `answer`, that it does not."""

    headers: HeaderChanges = NO_CHANGES
    body: bytes | None = None
    """A replacement body, or None to forward the original bytes untouched."""
    dynamic_metadata: Mapping[str, Mapping[str, Any]] | None = None
    clear_route_cache: bool = True
    """Re-run route matching after the header changes (needed for header-based routes)."""
    answer: ImmediateAnswer | None = None
    """Answer the client with this and forward nothing; the fields above are then ignored."""
    _reply: ProcessingResponse | None = field(default=None, init=False, repr=False, compare=False)
    """The headers reply the serving core built from this verdict, kept so that an exchange
    handing out the same verdict again (the EPP keeps one per destination) has it sent as it is
    instead of built anew (`_stream._headers_reply`). Set once, by the core only."""


PASS_THROUGH = RequestVerdict(clear_route_cache=False)


class Exchange(Protocol):
    """Per-request processing logic; see the module docstring for the call order."""

    async def request(self, request: HttpRequest) -> RequestVerdict: ...

    async def response_headers(
        self, headers: Mapping[str, str], end_of_stream: bool
    ) -> HeaderChanges: ...

    async def response_body(self, chunk: bytes, end_of_stream: bool) -> bytes: ...

    def close(self, completed: bool) -> None: ...

    def response_metadata(self, metadata: Mapping[str, Any]) -> None: ...

    def response_body_wanted(self) -> bool: ...

    def response_dynamic_metadata(self) -> Mapping[str, Mapping[str, Any]] | None: ...

    def interruption(self) -> asyncio.Future[InferenceError] | None: ...


ExchangeFactory = Callable[[StreamInfo], Exchange]


class PassThroughExchange:
    """An exchange that changes nothing; services subclass it and override what they need."""

    async def request(self, request: HttpRequest) -> RequestVerdict:  # noqa: ARG002 - protocol
        return PASS_THROUGH

    async def response_headers(
        self,
        headers: Mapping[str, str],  # noqa: ARG002 - protocol
        end_of_stream: bool,  # noqa: ARG002 - protocol
    ) -> HeaderChanges:
        return NO_CHANGES

    async def response_body(self, chunk: bytes, end_of_stream: bool) -> bytes:  # noqa: ARG002
        return chunk

    def close(self, completed: bool) -> None:
        """Nothing to release."""

    def response_metadata(self, metadata: Mapping[str, Any]) -> None:
        """Not needed."""

    def response_body_wanted(self) -> bool:
        return True

    def response_dynamic_metadata(self) -> Mapping[str, Mapping[str, Any]] | None:
        return None

    def interruption(self) -> asyncio.Future[InferenceError] | None:
        return None
