"""An in-process OTLP/gRPC trace receiver: the collector end-to-end tracing tests point at.

Envoy's OpenTelemetry tracer and our services' OTLP exporter both send `ExportTraceServiceRequest`s
to `OtlpReceiver.endpoint`; each span is kept as a flat `ReceivedSpan`. Exporters batch, so spans
arrive some time after the request: tests wait with `wait_for`, which wakes on every export instead
of sleeping.

Lifecycle: `async with OtlpReceiver() as rx` starts a `grpc.aio` server on 127.0.0.1 with a free
port, on the running event loop, and stops it on exit. Exports are handled on that loop, so a
Python exporter in the same process must export from its own thread (`BatchSpanProcessor` does),
and a blocking flush or shutdown of it must run off the loop (`asyncio.to_thread`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2

__all__ = ["OtlpReceiver", "OtlpSpanKind", "ReceivedSpan"]


class OtlpSpanKind(enum.IntEnum):
    """Span kinds as numbered on the OTLP wire (not `opentelemetry.trace.SpanKind`'s numbers)."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


@dataclasses.dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """One received span; ids are lowercase hex, `parent_span_id` is "" for a root span."""

    service_name: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, object]

    def describe(self) -> str:
        """A one-line summary for failure messages."""
        parent = self.parent_span_id or "-"
        return (
            f"{self.service_name} {self.name!r} kind={self.kind} trace={self.trace_id} "
            f"span={self.span_id} parent={parent}"
        )


class OtlpReceiver:
    """Collects the spans exported to it; see the module docstring for the lifecycle."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._arrived = asyncio.Condition()
        self._server: grpc.aio.Server | None = None
        self._port = 0

    @property
    def port(self) -> int:
        return self._port

    @property
    def endpoint(self) -> str:
        """The URL to give an OTLP/gRPC exporter (plaintext)."""
        return f"http://127.0.0.1:{self._port}"

    async def __aenter__(self) -> Self:
        server = grpc.aio.server()
        # The generated grpc module has no annotations; the call itself is the usual registration.
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(self), server
        )
        self._port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            await self._server.stop(grace=None)
            self._server = None

    async def wait_for(
        self,
        predicate: Callable[[Sequence[ReceivedSpan]], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - a bounded wait is the whole point of this helper
    ) -> list[ReceivedSpan]:
        """Wait until `predicate(all spans so far)` holds; returns a copy of the spans then.

        Raises `TimeoutError` listing every span received when `timeout` seconds pass first.
        """
        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(lambda: predicate(self.spans))
        except TimeoutError:
            received = "\n".join(f"  {span.describe()}" for span in self.spans) or "  (none)"
            raise TimeoutError(
                f"spans did not match within {timeout}s; received {len(self.spans)}:\n{received}"
            ) from None
        return list(self.spans)

    async def add(self, spans: Sequence[ReceivedSpan]) -> None:
        """Record `spans` and wake the waiters (the gRPC service calls this per export)."""
        async with self._arrived:
            self.spans.extend(spans)
            self._arrived.notify_all()


class _TraceService:
    """The OTLP `TraceService`, shaped as `trace_service_pb2_grpc.TraceServiceServicer`."""

    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    async def Export(  # noqa: N802 - the method name is fixed by the OTLP proto
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        _context: grpc.aio.ServicerContext[Any, Any],
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        await self._receiver.add(_flatten(request))
        return trace_service_pb2.ExportTraceServiceResponse()


def _flatten(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        service_name = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            spans.extend(
                ReceivedSpan(
                    service_name=service_name,
                    name=span.name,
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    kind=span.kind,
                    attributes=_attributes(span.attributes),
                )
                for span in scope_spans.spans
            )
    return spans


def _attributes(pairs: Sequence[common_pb2.KeyValue]) -> dict[str, object]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: common_pb2.AnyValue) -> object:
    """The Python value of an OTLP `AnyValue` (None when unset)."""
    field = value.WhichOneof("value")
    if field is None:
        return None
    if field == "array_value":
        return [_value(item) for item in value.array_value.values]
    if field == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, field)
