"""The gRPC face of the ext_proc core: one `Process` stream per HTTP request.

`ExtProcServicer.process` is a short loop: read a message, let the request's `Stream` sequence
it, write the replies. Errors end the stream in one of two ways:

* an `InferenceError` with an HTTP status becomes an `ImmediateResponse` (the client gets that
  status and upstream's `inference error: ...` body) and the stream ends normally, as it does
  after an exchange's own `ImmediateAnswer`, or after the exchange declined the response body
  (`Stream.released`: the response continues in Envoy without this process);
* a `StreamAbortError`, or any unexpected exception, aborts the gRPC stream, so Envoy applies the
  filter's failure mode. Unexpected exceptions are logged with their traceback; they never take
  the server down.

The exchange's `close` runs in every case, including client disconnects (gRPC cancellation).

An exchange may end its request early, between Envoy's messages: while its `interruption()`
future is pending, the loop waits for it and the next message alike, and when it resolves with
an `InferenceError` that error is answered as if the exchange had raised it (an
`ImmediateResponse` mid-stream; the EPP's flow control evicts in-flight requests this way). A
cancelled future just stops being watched. Without one, a message costs no extra task.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import structlog
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from igw.common import envoy
from igw.common.envoy import BodyMode, ProcessingRequest, ProcessingResponse
from igw.common.errors import InferenceError
from igw.common.extproc._exchange import ExchangeFactory, StreamInfo
from igw.common.extproc._stream import Stream
from igw.common.telemetry.tracing import extract_from_grpc_metadata

__all__ = ["EXT_PROC_SERVICE", "ExtProcServicer"]

EXT_PROC_SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"
_log = structlog.get_logger(__name__)


class ExtProcServicer:
    """Serves `envoy.service.ext_proc.v3.ExternalProcessor/Process` with a service's exchanges."""

    def __init__(
        self,
        factory: ExchangeFactory,
        *,
        request_mode: BodyMode = BodyMode.FULL_DUPLEX_STREAMED,
        response_mode: BodyMode = BodyMode.NONE,
        tracer: Tracer | None = None,
        span_name: str = "gateway.request",
    ) -> None:
        self._factory = factory
        self._request_mode = request_mode
        self._response_mode = response_mode
        self._tracer = tracer
        self._span_name = span_name

    def rpc_handler(self) -> grpc.GenericRpcHandler:
        """The handler to add to a `grpc.aio.Server`."""
        method = grpc.stream_stream_rpc_method_handler(
            self.process,
            request_deserializer=ProcessingRequest.FromString,
            response_serializer=ProcessingResponse.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(EXT_PROC_SERVICE, {"Process": method})

    async def process(
        self,
        requests: AsyncIterator[ProcessingRequest],
        context: grpc.aio.ServicerContext[ProcessingRequest, ProcessingResponse],
    ) -> AsyncIterator[ProcessingResponse]:
        span = self._start_span(context)
        exchange = self._factory(StreamInfo(span=span))
        stream = Stream(exchange, self._request_mode, self._response_mode)
        messages = aiter(requests)
        try:
            while True:
                try:
                    interruption = exchange.interruption()
                    if interruption is None:  # as cheap as `async for`
                        message = await anext(messages)
                    else:
                        message = await _next_or_interrupted(messages, interruption)
                    replies = await stream.handle(message)
                except StopAsyncIteration:
                    break  # Envoy half-closed the stream
                except InferenceError as e:
                    if not e.status:
                        raise
                    _record_error(span, e)
                    stream.completed = True
                    yield envoy.error_response(e)
                    return
                for reply in replies:
                    yield reply
                if stream.released:
                    # An immediate answer ends the request, as an error's does; a declined
                    # response body leaves nothing for this process to do.
                    return
        except InferenceError as e:
            _record_error(span, e)
            _end_with(context, grpc.StatusCode.UNKNOWN, e.message)
        except Exception as e:
            _log.exception("ext_proc stream failed")
            _record_error(span, e)
            _end_with(context, grpc.StatusCode.INTERNAL, f"internal error: {e}")
        finally:
            exchange.close(stream.completed)
            if span is not None:
                span.end()

    def _start_span(
        self, context: grpc.aio.ServicerContext[ProcessingRequest, ProcessingResponse]
    ) -> Span | None:
        if self._tracer is None:
            return None
        parent = extract_from_grpc_metadata(context.invocation_metadata())
        return self._tracer.start_span(self._span_name, context=parent, kind=SpanKind.SERVER)


async def _next_or_interrupted(
    messages: AsyncIterator[ProcessingRequest], interruption: asyncio.Future[InferenceError]
) -> ProcessingRequest:
    """The next message (StopAsyncIteration at the stream's end); raises the interruption's
    error if it resolves first (module docstring)."""
    if interruption.cancelled():
        return await anext(messages)
    reading = asyncio.ensure_future(anext(messages, None))
    try:
        await asyncio.wait((reading, interruption), return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        reading.cancel()
        raise
    if interruption.done() and not interruption.cancelled():
        reading.cancel()
        raise interruption.result()
    message = await reading
    if message is None:
        raise StopAsyncIteration
    return message


def _end_with(
    context: grpc.aio.ServicerContext[ProcessingRequest, ProcessingResponse],
    code: grpc.StatusCode,
    details: str,
) -> None:
    """End the stream with `code` when the handler returns. Not `context.abort()`: its exception
    path costs native memory per stream in grpc.aio (bench/results/stream_end.md)."""
    context.set_code(code)
    context.set_details(details)


def _record_error(span: Span | None, error: Exception) -> None:
    if span is not None and span.is_recording():
        span.set_status(Status(StatusCode.ERROR, str(error)))
        span.set_attribute("error.type", type(error).__name__)
