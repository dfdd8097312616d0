"""igw.common.extproc ExtProcServicer over real gRPC: errors, cleanup, tracing.

A grpc.aio server on loopback runs the servicer; the client calls `Process` as Envoy does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from igw.common import errors
from igw.common.envoy import BodyMode, ProcessingRequest, ProcessingResponse
from igw.common.extproc import (
    PASS_THROUGH,
    ExtProcServicer,
    HttpRequest,
    ImmediateAnswer,
    PassThroughExchange,
    RequestVerdict,
    StreamInfo,
)
from igw.common.telemetry.tracing import configure_tracing, shutdown_tracing
from igw.common.testing import messages

GET = {":method": "GET", ":path": "/v1/models"}
POST = {":method": "POST", ":path": "/v1/completions"}
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
WAIT_S = 5.0

Decide = Callable[[HttpRequest], Awaitable[RequestVerdict]]


async def pass_through(_request: HttpRequest) -> RequestVerdict:
    return PASS_THROUGH


@dataclass
class Exchanges:
    """An exchange factory whose exchanges run `decide` and report their lifecycle."""

    decide: Decide = pass_through
    infos: list[StreamInfo] = field(default_factory=list)
    closed: list[bool] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    closed_event: asyncio.Event = field(default_factory=asyncio.Event)
    interrupt: asyncio.Future[errors.InferenceError] | None = None
    body_wanted: bool = True

    def __call__(self, info: StreamInfo) -> PassThroughExchange:
        self.infos.append(info)
        self.started.set()
        return _Exchange(self)


class _Exchange(PassThroughExchange):
    def __init__(self, owner: Exchanges) -> None:
        self._owner = owner

    async def request(self, request: HttpRequest) -> RequestVerdict:
        return await self._owner.decide(request)

    def close(self, completed: bool) -> None:
        self._owner.closed.append(completed)
        self._owner.closed_event.set()

    def interruption(self) -> asyncio.Future[errors.InferenceError] | None:
        return self._owner.interrupt

    def response_body_wanted(self) -> bool:
        return self._owner.body_wanted


def raising(error: Exception) -> Decide:
    async def decide(_request: HttpRequest) -> RequestVerdict:
        raise error

    return decide


Process = grpc.aio.StreamStreamMultiCallable[ProcessingRequest, ProcessingResponse]


@asynccontextmanager
async def serving(exchanges: Exchanges, tracer: Tracer | None = None) -> AsyncIterator[Process]:
    """`Process` on a loopback server running an `ExtProcServicer` over `exchanges`."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([ExtProcServicer(exchanges, tracer=tracer).rpc_handler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield messages.ext_proc_call(channel)
    finally:
        await channel.close()
        await server.stop(None)


async def exchange_all(
    process: Process,
    sent: Sequence[ProcessingRequest],
    metadata: Sequence[tuple[str, str]] = (),
) -> tuple[list[messages.ReplyView], grpc.StatusCode]:
    """Send `sent`, half-close, read every reply; the replies and the stream's final status."""
    call = process(iter(sent), timeout=WAIT_S, metadata=tuple(metadata))
    replies = [messages.describe(reply) async for reply in call]
    return replies, await call.code()


@pytest.mark.parametrize(
    ("error", "sent"),
    [
        pytest.param(
            errors.BadRequestError("failed to parse request body: x"),
            [messages.request_headers(POST), messages.request_body(b"x", end_of_stream=True)],
            id="bad-body",
        ),
        pytest.param(
            errors.InternalError("no pods available in datastore"),
            [messages.request_headers(GET, end_of_stream=True)],
            id="header-only",
        ),
    ],
)
async def test_error_with_status_is_one_immediate_response(
    error: errors.InferenceError, sent: list[ProcessingRequest]
) -> None:
    exchanges = Exchanges(decide=raising(error))
    async with serving(exchanges) as process:
        replies, code = await exchange_all(process, sent)

    assert [(r.kind, r.status, r.body) for r in replies] == [
        ("immediate_response", error.status, error.body().encode())
    ]
    assert code is grpc.StatusCode.OK
    assert exchanges.closed == [True]


async def test_an_immediate_answer_ends_the_stream_completed() -> None:
    answer = ImmediateAnswer(404, '{"error":{}}', (("content-type", "application/json"),))

    async def answering(_request: HttpRequest) -> RequestVerdict:
        return RequestVerdict(answer=answer)

    exchanges = Exchanges(decide=answering)
    async with serving(exchanges) as process:
        # The stream is left open: the server, not the client, ends it after the answer.
        call = process(timeout=WAIT_S)
        await call.write(messages.request_headers(GET, end_of_stream=True))
        replies = [messages.describe(reply) async for reply in call]
        code = await call.code()

    assert [(r.kind, r.status, r.body, r.set_headers) for r in replies] == [
        ("immediate_response", 404, b'{"error":{}}', {"content-type": "application/json"})
    ]
    assert code is grpc.StatusCode.OK
    assert exchanges.closed == [True]


async def test_a_declined_response_body_ends_the_call_without_waiting_for_envoy() -> None:
    """Decide at response headers, then let go: the server ends the call (OK) right after the
    headers reply, so the response flowing back in Envoy no longer needs this process."""
    exchanges = Exchanges(body_wanted=False)
    streamed = (BodyMode.FULL_DUPLEX_STREAMED, BodyMode.STREAMED)
    async with serving(exchanges) as process:
        call = process(timeout=WAIT_S)  # left open: Envoy sends nothing after the skip
        await call.write(messages.request_headers(GET, end_of_stream=True, modes=streamed))
        first = messages.describe(await call.read())
        await call.write(messages.response_headers({":status": "200"}))
        replies = []
        while (reply := await call.read()) is not grpc.aio.EOF:
            replies.append(messages.describe(reply))
        code = await call.code()

    assert first.kind == "request_headers"
    assert [(r.kind, r.skip_body) for r in replies] == [("response_headers", True)]
    assert code is grpc.StatusCode.OK
    assert exchanges.closed == [True]


@pytest.mark.parametrize(
    ("error", "code", "details"),
    [
        # Unmapped errors fail the stream so that Envoy applies its failure mode.
        pytest.param(
            errors.StreamAbortError("config broken"),
            grpc.StatusCode.UNKNOWN,
            "config broken",
            id="stream-abort",
        ),
        pytest.param(
            RuntimeError("boom"), grpc.StatusCode.INTERNAL, "internal error: boom", id="unexpected"
        ),
    ],
)
async def test_unanswerable_error_fails_stream_and_server_keeps_serving(
    error: Exception, code: grpc.StatusCode, details: str
) -> None:
    exchanges = Exchanges(decide=raising(error))
    async with serving(exchanges) as process:
        call = process(iter([messages.request_headers(GET, end_of_stream=True)]), timeout=WAIT_S)
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            [reply async for reply in call]

        exchanges.decide = pass_through
        replies, next_code = await exchange_all(
            process, [messages.request_headers(GET, end_of_stream=True)]
        )

    assert failed.value.code() is code
    assert failed.value.details() == details
    assert exchanges.closed == [False, False]
    assert [r.kind for r in replies] == ["request_headers"]
    assert next_code is grpc.StatusCode.OK


async def read_to_end(
    call: grpc.aio.StreamStreamCall[ProcessingRequest, ProcessingResponse],
) -> list[messages.ReplyView]:
    replies = []
    while (reply := await call.read()) is not grpc.aio.EOF:
        assert isinstance(reply, ProcessingResponse)
        replies.append(messages.describe(reply))
    return replies


async def test_an_interruption_answers_between_messages() -> None:
    """The request was forwarded; before Envoy sends anything more, the exchange ends it."""
    exchanges = Exchanges(interrupt=asyncio.get_running_loop().create_future())
    async with serving(exchanges) as process:
        call = process(timeout=WAIT_S)
        await call.write(messages.request_headers(GET, end_of_stream=True))
        forwarded = messages.describe(await call.read())
        assert exchanges.interrupt is not None
        exchanges.interrupt.set_result(errors.ResourceExhaustedError("evicted"))
        replies = await read_to_end(call)
        code = await call.code()

    assert forwarded.kind == "request_headers"
    assert [(r.kind, r.status, r.body) for r in replies] == [
        ("immediate_response", 429, b"inference error: ResourceExhausted - evicted")
    ]
    assert code is grpc.StatusCode.OK
    assert exchanges.closed == [True]


async def test_a_cancelled_interruption_is_no_longer_watched() -> None:
    exchanges = Exchanges(interrupt=asyncio.get_running_loop().create_future())
    async with serving(exchanges) as process:
        call = process(timeout=WAIT_S)
        await call.write(messages.request_headers(GET, end_of_stream=True))
        await call.read()
        assert exchanges.interrupt is not None
        exchanges.interrupt.cancel()
        await call.write(messages.response_headers({":status": "200"}, end_of_stream=True))
        await call.done_writing()
        replies = await read_to_end(call)

    assert [r.kind for r in replies] == ["response_headers"]
    assert exchanges.closed == [True]


async def test_client_cancel_mid_body_closes_exchange_incomplete() -> None:
    exchanges = Exchanges()
    async with serving(exchanges) as process:
        call = process(timeout=WAIT_S)
        await call.write(messages.request_headers(POST))
        await call.write(messages.request_body(b'{"model":', end_of_stream=False))
        await asyncio.wait_for(exchanges.started.wait(), WAIT_S)

        call.cancel()
        await asyncio.wait_for(exchanges.closed_event.wait(), WAIT_S)

    assert exchanges.closed == [False]


@pytest.fixture
def traced() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = configure_tracing("igw-test", exporter=exporter, install_global=False)
    assert provider is not None
    yield provider.get_tracer("test"), exporter
    shutdown_tracing(provider)


async def finished_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    for _ in range(100):
        if spans := exporter.get_finished_spans():
            [span] = spans
            return span
        await asyncio.sleep(0.01)
    raise AssertionError("no span finished")


async def test_span_continues_envoy_trace(traced: tuple[Tracer, InMemorySpanExporter]) -> None:
    tracer, exporter = traced
    exchanges = Exchanges()
    metadata = (("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01"),)
    async with serving(exchanges, tracer) as process:
        _, code = await exchange_all(
            process, [messages.request_headers(GET, end_of_stream=True)], metadata=metadata
        )

    span = await finished_span(exporter)
    assert code is grpc.StatusCode.OK
    assert span.name == "gateway.request"
    assert span.kind is SpanKind.SERVER
    assert span.context is not None
    assert span.context.trace_id == int(TRACE_ID, 16)
    assert span.parent is not None
    assert span.parent.span_id == int(PARENT_ID, 16)
    assert span.parent.is_remote
    # The exchange got the same span, to add its attributes to.
    [info] = exchanges.infos
    assert info.span is not None
    assert info.span.get_span_context().span_id == span.context.span_id


async def test_span_of_failed_request_records_error(
    traced: tuple[Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = traced
    exchanges = Exchanges(decide=raising(errors.BadRequestError("bad")))
    async with serving(exchanges, tracer) as process:
        await exchange_all(process, [messages.request_headers(GET, end_of_stream=True)])

    span = await finished_span(exporter)
    assert span.parent is None  # no traceparent: a new trace
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "BadRequestError"


async def test_without_tracer_exchange_gets_no_span() -> None:
    exchanges = Exchanges()
    async with serving(exchanges) as process:
        await exchange_all(process, [messages.request_headers(GET, end_of_stream=True)])

    assert [info.span for info in exchanges.infos] == [None]
