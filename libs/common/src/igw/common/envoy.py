"""Envoy ext_proc messages: the only module in igw that touches protobuf.

Services speak the small frozen dataclasses below (`HeaderChanges`, `BodyChunk` ...) and this module
turns them into `envoy.service.ext_proc.v3` messages from `xds-protos` (upb-generated, a few
microseconds per message; the typed `envoy-data-plane` classes are 50-300x slower and are used
only for configuration, never here).

Phases: Envoy's oneof names come in pairs (`request_headers` / `response_headers` ...); `Phase`
selects the side, so one builder serves both.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc_pb2
from envoy.type.v3 import http_status_pb2
from google.protobuf import struct_pb2

from igw.common.errors import InferenceError

__all__ = [
    "BODY_CHUNK_LIMIT",
    "NO_CHANGES",
    "BodyMode",
    "HeaderChanges",
    "Phase",
    "ProcessingRequest",
    "ProcessingResponse",
    "body_chunks",
    "body_continue",
    "buffered_body_response",
    "error_response",
    "filter_metadata",
    "headers_of",
    "headers_response",
    "immediate_response",
    "protocol_body_modes",
    "trailers_response",
]

ProcessingRequest = ext_proc_pb2.ProcessingRequest
ProcessingResponse = ext_proc_pb2.ProcessingResponse

# Upstream GIE's chunk size for streamed body mutations: below the 64 KiB frame limit some proxies
# enforce, and far below gRPC's 4 MiB message limit that a whole large body would hit.
BODY_CHUNK_LIMIT = 62_000

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


class Phase(enum.Enum):
    """Which side of the HTTP exchange a message belongs to."""

    REQUEST = "request"
    RESPONSE = "response"


class BodyMode(enum.Enum):
    """Envoy's `ProcessingMode.BodySendMode`, as far as igw distinguishes them."""

    NONE = 0
    STREAMED = 1
    BUFFERED = 2
    BUFFERED_PARTIAL = 3
    FULL_DUPLEX_STREAMED = 4


@dataclass(frozen=True, slots=True)
class HeaderChanges:
    """Headers to set (overwriting any existing value) and headers to remove."""

    set: Sequence[tuple[str, str]] = ()
    remove: Sequence[str] = ()

    def __bool__(self) -> bool:
        return bool(self.set or self.remove)


NO_CHANGES = HeaderChanges()


def headers_of(header_map: base_pb2.HeaderMap) -> dict[str, str]:
    """Header name -> value; Envoy puts values in `raw_value` (bytes) and leaves `value` empty."""
    out: dict[str, str] = {}
    for h in header_map.headers:
        raw = h.raw_value
        out[h.key] = raw.decode("utf-8", "replace") if raw else h.value
    return out


def filter_metadata(request: ext_proc_pb2.ProcessingRequest) -> dict[str, Any]:
    """The `metadata_context.filter_metadata` namespaces as plain Python values."""
    if not request.HasField("metadata_context"):
        return {}
    return {
        ns: _struct_to_dict(value) for ns, value in request.metadata_context.filter_metadata.items()
    }


def protocol_body_modes(
    request: ext_proc_pb2.ProcessingRequest,
) -> tuple[BodyMode, BodyMode] | None:
    """(request, response) body modes Envoy announces on a stream's first message, if it does."""
    if not request.HasField("protocol_config"):
        return None
    config = request.protocol_config
    return BodyMode(config.request_body_mode), BodyMode(config.response_body_mode)


def _struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    from google.protobuf import json_format  # noqa: PLC0415 - rare path, keep import cost off startup

    result: dict[str, Any] = json_format.MessageToDict(struct)
    return result


def _header_mutation(changes: HeaderChanges) -> ext_proc_pb2.HeaderMutation:
    return ext_proc_pb2.HeaderMutation(
        set_headers=[
            base_pb2.HeaderValueOption(
                header=base_pb2.HeaderValue(key=key, raw_value=value.encode()),
                append_action=_OVERWRITE,
            )
            for key, value in changes.set
        ],
        remove_headers=list(changes.remove),
    )


def _common(
    changes: HeaderChanges, clear_route_cache: bool, body: bytes | None = None
) -> ext_proc_pb2.CommonResponse:
    common = ext_proc_pb2.CommonResponse(clear_route_cache=clear_route_cache)
    if changes:
        common.header_mutation.CopyFrom(_header_mutation(changes))
    if body is not None:
        common.body_mutation.body = body
    return common


def _with_metadata(
    response: ext_proc_pb2.ProcessingResponse, metadata: Mapping[str, Mapping[str, Any]] | None
) -> ext_proc_pb2.ProcessingResponse:
    if metadata:
        response.dynamic_metadata.update({ns: dict(values) for ns, values in metadata.items()})
    return response


def headers_response(
    phase: Phase,
    changes: HeaderChanges = NO_CHANGES,
    *,
    clear_route_cache: bool = False,
    dynamic_metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> ext_proc_pb2.ProcessingResponse:
    """The answer to a `request_headers` or `response_headers` message."""
    reply = ext_proc_pb2.HeadersResponse(response=_common(changes, clear_route_cache))
    response = ext_proc_pb2.ProcessingResponse(**{f"{phase.value}_headers": reply})
    return _with_metadata(response, dynamic_metadata)


def body_chunks(
    phase: Phase, body: bytes, *, end_of_stream: bool
) -> Iterator[ext_proc_pb2.ProcessingResponse]:
    """`body` as streamed mutations of at most `BODY_CHUNK_LIMIT` bytes (full-duplex mode).

    Only the last chunk carries `end_of_stream`; an empty body is still one chunk, because in
    full-duplex mode Envoy forwards exactly the bytes the processor sends back.
    """
    key = f"{phase.value}_body"
    view = memoryview(body)
    last = max(len(body) - 1, 0) // BODY_CHUNK_LIMIT * BODY_CHUNK_LIMIT
    for start in range(0, last + 1, BODY_CHUNK_LIMIT):
        streamed = ext_proc_pb2.StreamedBodyResponse(
            body=bytes(view[start : start + BODY_CHUNK_LIMIT]),
            end_of_stream=end_of_stream and start == last,
        )
        common = ext_proc_pb2.CommonResponse(
            body_mutation=ext_proc_pb2.BodyMutation(streamed_response=streamed)
        )
        yield ext_proc_pb2.ProcessingResponse(**{key: ext_proc_pb2.BodyResponse(response=common)})


def body_continue(phase: Phase) -> ext_proc_pb2.ProcessingResponse:
    """Let a (buffered or streamed-mode) body through unchanged."""
    body = ext_proc_pb2.BodyResponse(response=ext_proc_pb2.CommonResponse())
    return ext_proc_pb2.ProcessingResponse(**{f"{phase.value}_body": body})


def buffered_body_response(
    phase: Phase,
    changes: HeaderChanges = NO_CHANGES,
    *,
    body: bytes | None = None,
    clear_route_cache: bool = False,
    dynamic_metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> ext_proc_pb2.ProcessingResponse:
    """The answer to a whole buffered body: header changes and, if `body` is given, a new body."""
    reply = ext_proc_pb2.BodyResponse(response=_common(changes, clear_route_cache, body))
    response = ext_proc_pb2.ProcessingResponse(**{f"{phase.value}_body": reply})
    return _with_metadata(response, dynamic_metadata)


def trailers_response(phase: Phase) -> ext_proc_pb2.ProcessingResponse:
    """Trailers passed through unchanged."""
    return ext_proc_pb2.ProcessingResponse(
        **{f"{phase.value}_trailers": ext_proc_pb2.TrailersResponse()}
    )


def immediate_response(
    status: int, body: str, headers: Sequence[tuple[str, str]] = ()
) -> ext_proc_pb2.ProcessingResponse:
    """Envoy answers the client directly with `status` and `body`; nothing goes upstream."""
    immediate = ext_proc_pb2.ImmediateResponse(
        status=http_status_pb2.HttpStatus(code=status),
        body=body.encode(),
    )
    if headers:
        immediate.headers.CopyFrom(_header_mutation(HeaderChanges(set=headers)))
    return ext_proc_pb2.ProcessingResponse(immediate_response=immediate)


_TEXT_PLAIN = (("content-type", "text/plain; charset=utf-8"),)


def error_response(error: InferenceError) -> ext_proc_pb2.ProcessingResponse:
    """The `ImmediateResponse` for an error that has an HTTP status (see `igw.common.errors`)."""
    return immediate_response(error.status, error.body(), _TEXT_PLAIN)
