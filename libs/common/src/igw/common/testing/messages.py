"""Envoy ext_proc messages for tests: the one place a test builds or reads protobuf.

Builders make the `ProcessingRequest`s Envoy sends (header values in `raw_value`, as Envoy puts
them; `protocol_config` when a test plays a stream's first message). `describe` turns a
`ProcessingResponse` into a `ReplyView` of plain values, so a test compares dicts and bytes rather
than walking protobuf. `ext_proc_call` gives the client side of a real `Process` stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc_pb2
from google.protobuf import json_format

from igw.common.envoy import BodyMode, ProcessingRequest, ProcessingResponse
from igw.common.extproc import EXT_PROC_SERVICE

__all__ = [
    "PROCESS_METHOD",
    "ReplyView",
    "describe",
    "describe_all",
    "ext_proc_call",
    "request_body",
    "request_headers",
    "request_trailers",
    "response_body",
    "response_headers",
    "response_trailers",
    "streamed_body",
]

Headers = Mapping[str, str] | Sequence[tuple[str, str]]
Metadata = Mapping[str, Mapping[str, Any]]

PROCESS_METHOD = f"/{EXT_PROC_SERVICE}/Process"


def request_headers(
    headers: Headers,
    *,
    end_of_stream: bool = False,
    metadata: Metadata | None = None,
    modes: tuple[BodyMode, BodyMode] | None = None,
) -> ProcessingRequest:
    """A `request_headers` message; `modes` = (request, response) body modes Envoy announces."""
    message = ProcessingRequest(request_headers=_http_headers(headers, end_of_stream))
    _add_metadata(message, metadata)
    if modes is not None:
        message.protocol_config.CopyFrom(
            ext_proc_pb2.ProtocolConfiguration(
                request_body_mode=modes[0].value, response_body_mode=modes[1].value
            )
        )
    return message


def request_body(data: bytes, *, end_of_stream: bool) -> ProcessingRequest:
    return ProcessingRequest(
        request_body=ext_proc_pb2.HttpBody(body=data, end_of_stream=end_of_stream)
    )


def request_trailers(trailers: Headers = ()) -> ProcessingRequest:
    return ProcessingRequest(
        request_trailers=ext_proc_pb2.HttpTrailers(trailers=_header_map(trailers))
    )


def response_headers(
    headers: Headers, *, end_of_stream: bool = False, metadata: Metadata | None = None
) -> ProcessingRequest:
    message = ProcessingRequest(response_headers=_http_headers(headers, end_of_stream))
    _add_metadata(message, metadata)
    return message


def response_body(data: bytes, *, end_of_stream: bool) -> ProcessingRequest:
    return ProcessingRequest(
        response_body=ext_proc_pb2.HttpBody(body=data, end_of_stream=end_of_stream)
    )


def response_trailers(trailers: Headers = ()) -> ProcessingRequest:
    return ProcessingRequest(
        response_trailers=ext_proc_pb2.HttpTrailers(trailers=_header_map(trailers))
    )


def _header_map(headers: Headers) -> base_pb2.HeaderMap:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    return base_pb2.HeaderMap(
        headers=[base_pb2.HeaderValue(key=key, raw_value=value.encode()) for key, value in pairs]
    )


def _http_headers(headers: Headers, end_of_stream: bool) -> ext_proc_pb2.HttpHeaders:
    return ext_proc_pb2.HttpHeaders(headers=_header_map(headers), end_of_stream=end_of_stream)


def _add_metadata(message: ProcessingRequest, metadata: Metadata | None) -> None:
    for namespace, values in (metadata or {}).items():
        message.metadata_context.filter_metadata[namespace].update(dict(values))


@dataclass(frozen=True, slots=True)
class ReplyView:
    """One `ProcessingResponse` as plain values.

    `kind` is the response's oneof (`request_headers`, `request_body`, `request_trailers`, the
    `response_*` three, or `immediate_response`). Header mutations, and an immediate response's
    headers, are in `set_headers` / `remove_headers`. `body` is the body mutation (a streamed
    chunk when `streamed`, else a buffered replacement), or an immediate response's body; None
    when the reply leaves the body alone. `end_of_stream` is a streamed chunk's flag.
    `skip_body` is a headers or body reply with status `CONTINUE_AND_REPLACE`.
    """

    kind: str
    set_headers: dict[str, str] = field(default_factory=dict)
    remove_headers: list[str] = field(default_factory=list)
    clear_route_cache: bool = False
    body: bytes | None = None
    streamed: bool = False
    end_of_stream: bool = False
    status: int | None = None
    dynamic_metadata: dict[str, Any] = field(default_factory=dict)
    skip_body: bool = False


def describe(reply: ProcessingResponse) -> ReplyView:
    """`reply` as plain values; raises `ValueError` for a reply with no response set."""
    kind = reply.WhichOneof("response")
    if kind is None:
        raise ValueError(f"a ProcessingResponse without a response: {reply}")
    metadata: dict[str, Any] = {}
    if reply.HasField("dynamic_metadata"):
        metadata = json_format.MessageToDict(reply.dynamic_metadata)
    if kind == "immediate_response":
        immediate = reply.immediate_response
        return ReplyView(
            kind,
            set_headers=_set_headers(immediate.headers),
            remove_headers=list(immediate.headers.remove_headers),
            body=immediate.body,
            status=immediate.status.code,
            dynamic_metadata=metadata,
        )
    if kind.endswith("_trailers"):
        return ReplyView(kind, dynamic_metadata=metadata)
    return _common_view(kind, getattr(reply, kind).response, metadata)


def _common_view(
    kind: str, common: ext_proc_pb2.CommonResponse, metadata: dict[str, Any]
) -> ReplyView:
    mutation = common.body_mutation
    mutated = mutation.WhichOneof("mutation")
    streamed = mutated == "streamed_response"
    body: bytes | None = None
    if streamed:
        body = mutation.streamed_response.body
    elif mutated == "body":
        body = mutation.body
    return ReplyView(
        kind,
        set_headers=_set_headers(common.header_mutation),
        remove_headers=list(common.header_mutation.remove_headers),
        clear_route_cache=common.clear_route_cache,
        body=body,
        streamed=streamed,
        end_of_stream=streamed and mutation.streamed_response.end_of_stream,
        dynamic_metadata=metadata,
        skip_body=common.status == ext_proc_pb2.CommonResponse.CONTINUE_AND_REPLACE,
    )


def describe_all(replies: Iterable[ProcessingResponse]) -> list[ReplyView]:
    return [describe(reply) for reply in replies]


def streamed_body(views: Iterable[ReplyView]) -> bytes:
    """The body carried by a run of streamed chunks, joined in order."""
    return b"".join(view.body or b"" for view in views if view.streamed)


def _set_headers(mutation: ext_proc_pb2.HeaderMutation) -> dict[str, str]:
    return {
        option.header.key: option.header.raw_value.decode() or option.header.value
        for option in mutation.set_headers
    }


def ext_proc_call(
    channel: grpc.aio.Channel,
) -> grpc.aio.StreamStreamMultiCallable[ProcessingRequest, ProcessingResponse]:
    """The `Process` method of an ext_proc server on `channel`, as Envoy calls it."""
    return channel.stream_stream(
        PROCESS_METHOD,
        request_serializer=ProcessingRequest.SerializeToString,
        response_deserializer=ProcessingResponse.FromString,
    )
