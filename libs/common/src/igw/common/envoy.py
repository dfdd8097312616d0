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
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_proc_pb2
from google.protobuf import struct_pb2

from igw.common.errors import InferenceError

__all__ = [
    "BODY_CHUNK_LIMIT",
    "NO_CHANGES",
    "BodyMode",
    "HeaderChanges",
    "LazyHeaders",
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
    "with_dynamic_metadata",
]

ProcessingRequest = ext_proc_pb2.ProcessingRequest
ProcessingResponse = ext_proc_pb2.ProcessingResponse

# Upstream GIE's chunk size for streamed body mutations: below the 64 KiB frame limit some proxies
# enforce, and far below gRPC's 4 MiB message limit that a whole large body would hit.
BODY_CHUNK_LIMIT = 62_000

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_CONTINUE_AND_REPLACE = ext_proc_pb2.CommonResponse.CONTINUE_AND_REPLACE


class Phase(enum.Enum):
    """Which side of the HTTP exchange a message belongs to."""

    REQUEST = "request"
    RESPONSE = "response"

    # Members are singletons compared by identity; Enum's own __hash__ is Python code, run on
    # every reply-table lookup of the request path.
    __hash__ = object.__hash__


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


class LazyHeaders(Mapping[str, str]):
    """A request's headers, decoded from the protobuf map only when first read.

    Envoy puts values in `raw_value` (bytes) and leaves `value` empty. Decoding a dozen headers
    costs a few microseconds per request, which services that never read them need not pay.
    """

    __slots__ = ("_decoded", "_map")

    def __init__(self, header_map: base_pb2.HeaderMap) -> None:
        self._map = header_map
        self._decoded: dict[str, str] | None = None

    def _dict(self) -> dict[str, str]:
        if self._decoded is None:
            self._decoded = headers_of(self._map)
        return self._decoded

    def __getitem__(self, key: str) -> str:
        return self._dict()[key]

    # Mapping's own `get` and `in` go through `__getitem__` and a caught KeyError: several
    # times slower for the absent control headers a request path looks up on every request.
    def get(self, key: str, default: Any = None) -> Any:
        return self._dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._dict()

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __repr__(self) -> str:
        return f"LazyHeaders({self._dict()!r})"


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


# BodySendMode values are 0..4 in declaration order; indexing beats calling the enum.
_BODY_MODES = tuple(BodyMode)


def protocol_body_modes(
    request: ext_proc_pb2.ProcessingRequest,
) -> tuple[BodyMode, BodyMode] | None:
    """(request, response) body modes Envoy announces on a stream's first message, if it does.

    A mode number this Envoy API does not define counts as no announcement (None): the stream
    then runs in the server's configured modes rather than failing (or, for a negative number,
    being read from the end of the enum).
    """
    if not request.HasField("protocol_config"):
        return None
    config = request.protocol_config
    modes = (config.request_body_mode, config.response_body_mode)
    if not all(0 <= mode < len(_BODY_MODES) for mode in modes):
        return None
    return _BODY_MODES[modes[0]], _BODY_MODES[modes[1]]


def _struct_to_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """`json_format.MessageToDict(struct)`, without its generic descriptor walk: several times
    cheaper, and Envoy sends metadata with every response's headers (the served endpoint)."""
    return {key: _value(value) for key, value in struct.fields.items()}


def _value(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        number = value.number_value
        if math.isinf(number) or math.isnan(number):  # as json_format: JSON has no such number
            raise ValueError(f"Fail to serialize {number} for Value.number_value")
        return number
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _struct_to_dict(value.struct_value)
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    return None  # null_value, or no kind set


# Messages are built in place (fields set on sub-messages of one new response) rather than from
# nested constructors: with upb that is 3-4x cheaper, and this is the per-request hot path.
_HEADERS_FIELD = {Phase.REQUEST: "request_headers", Phase.RESPONSE: "response_headers"}
_BODY_FIELD = {Phase.REQUEST: "request_body", Phase.RESPONSE: "response_body"}
_TRAILERS_FIELD = {Phase.REQUEST: "request_trailers", Phase.RESPONSE: "response_trailers"}


def _set_header_mutation(mutation: ext_proc_pb2.HeaderMutation, changes: HeaderChanges) -> None:
    add = mutation.set_headers.add
    for key, value in changes.set:
        option = add()
        option.header.key = key
        option.header.raw_value = value.encode()
        option.append_action = _OVERWRITE
    if changes.remove:
        mutation.remove_headers.extend(changes.remove)


def _fill_common(
    common: ext_proc_pb2.CommonResponse, changes: HeaderChanges, clear_route_cache: bool
) -> None:
    if clear_route_cache:
        common.clear_route_cache = True
    if changes.set or changes.remove:
        _set_header_mutation(common.header_mutation, changes)


def _with_metadata(
    response: ext_proc_pb2.ProcessingResponse, metadata: Mapping[str, Mapping[str, Any]] | None
) -> ext_proc_pb2.ProcessingResponse:
    if metadata:
        response.dynamic_metadata.update({ns: dict(values) for ns, values in metadata.items()})
    return response


def with_dynamic_metadata(
    response: ext_proc_pb2.ProcessingResponse, metadata: Mapping[str, Mapping[str, Any]] | None
) -> ext_proc_pb2.ProcessingResponse:
    """`response` with `metadata` (namespace -> fields) added to its `dynamic_metadata`.

    For replies built before their metadata is known, e.g. the last response-body chunk, which
    carries what response plugins computed at the end of the stream.
    """
    return _with_metadata(response, metadata)


def headers_response(
    phase: Phase,
    changes: HeaderChanges = NO_CHANGES,
    *,
    clear_route_cache: bool = False,
    dynamic_metadata: Mapping[str, Mapping[str, Any]] | None = None,
    skip_body: bool = False,
) -> ext_proc_pb2.ProcessingResponse:
    """The answer to a `request_headers` or `response_headers` message.

    `skip_body` answers with status `CONTINUE_AND_REPLACE` and no body mutation: Envoy keeps the
    body as it is and sends the processor nothing more for this request (it ends the stream).
    Only safe in STREAMED or BUFFERED body mode; see `igw.common.extproc._stream`.

    Each distinct answer is built once (`_REPLIES`) and copied after that: the EPP's answers
    differ only by destination, and a copy costs a tenth of building the header mutation and
    the metadata `Struct` again. The caller always gets a message of its own.
    """
    key = _reply_key(phase, changes, clear_route_cache, dynamic_metadata, skip_body)
    prototype = _REPLIES.get(key) if key is not None else None
    response = ext_proc_pb2.ProcessingResponse()
    if prototype is not None:
        response.CopyFrom(prototype)
        return response
    reply = getattr(response, _HEADERS_FIELD[phase])
    reply.SetInParent()  # an empty HeadersResponse must still be present
    _fill_common(reply.response, changes, clear_route_cache)
    if skip_body:
        reply.response.status = _CONTINUE_AND_REPLACE
    _with_metadata(response, dynamic_metadata)
    if key is not None:
        if len(_REPLIES) >= _REPLIES_MAX:
            _REPLIES.clear()  # unbounded variety (e.g. generated request ids): start over
        _REPLIES[key] = prototype = ext_proc_pb2.ProcessingResponse()
        prototype.CopyFrom(response)
    return response


_REPLIES: dict[tuple[Any, ...], ext_proc_pb2.ProcessingResponse] = {}
"""Headers answers by everything they are built from; never handed out, only copied."""
_REPLIES_MAX = 4096


def _reply_key(
    phase: Phase,
    changes: HeaderChanges,
    clear_route_cache: bool,
    metadata: Mapping[str, Mapping[str, Any]] | None,
    skip_body: bool,
) -> tuple[Any, ...] | None:
    """A hashable key for a headers answer, or None when a part is not hashable (lists in the
    changes, structured metadata values): that answer is then built every time. The metadata
    values' types are part of the key: `1`, `1.0` and `True` are equal keys but not equal
    `Struct` values."""
    try:
        flat = (
            tuple(
                (ns, tuple(v.items()), tuple(map(type, v.values()))) for ns, v in metadata.items()
            )
            if metadata
            else ()
        )
        key = (phase, changes, clear_route_cache, flat, skip_body)
        hash(key)
    except TypeError:
        return None
    return key


def _streamed_chunk(
    phase: Phase, chunk: bytes, end_of_stream: bool
) -> ext_proc_pb2.ProcessingResponse:
    response = ext_proc_pb2.ProcessingResponse()
    streamed = getattr(response, _BODY_FIELD[phase]).response.body_mutation.streamed_response
    streamed.body = chunk
    if end_of_stream:
        streamed.end_of_stream = True
    else:
        streamed.SetInParent()  # an empty, still-open chunk must still be present
    return response


def body_chunks(
    phase: Phase, body: bytes, *, end_of_stream: bool
) -> Iterator[ext_proc_pb2.ProcessingResponse]:
    """`body` as streamed mutations of at most `BODY_CHUNK_LIMIT` bytes (full-duplex mode).

    Only the last chunk carries `end_of_stream`; an empty body is still one chunk, because in
    full-duplex mode Envoy forwards exactly the bytes the processor sends back.
    """
    if len(body) <= BODY_CHUNK_LIMIT:
        yield _streamed_chunk(phase, body, end_of_stream)
        return
    view = memoryview(body)
    last = (len(body) - 1) // BODY_CHUNK_LIMIT * BODY_CHUNK_LIMIT
    for start in range(0, last + 1, BODY_CHUNK_LIMIT):
        chunk = bytes(view[start : start + BODY_CHUNK_LIMIT])
        yield _streamed_chunk(phase, chunk, end_of_stream and start == last)


def body_continue(phase: Phase) -> ext_proc_pb2.ProcessingResponse:
    """Let a (buffered or streamed-mode) body through unchanged."""
    response = ext_proc_pb2.ProcessingResponse()
    getattr(response, _BODY_FIELD[phase]).response.SetInParent()
    return response


def buffered_body_response(
    phase: Phase,
    changes: HeaderChanges = NO_CHANGES,
    *,
    body: bytes | None = None,
    clear_route_cache: bool = False,
    dynamic_metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> ext_proc_pb2.ProcessingResponse:
    """The answer to a whole buffered body: header changes and, if `body` is given, a new body."""
    response = ext_proc_pb2.ProcessingResponse()
    common = getattr(response, _BODY_FIELD[phase]).response
    common.SetInParent()
    _fill_common(common, changes, clear_route_cache)
    if body is not None:
        common.body_mutation.body = body
    return _with_metadata(response, dynamic_metadata)


def trailers_response(phase: Phase) -> ext_proc_pb2.ProcessingResponse:
    """Trailers passed through unchanged."""
    response = ext_proc_pb2.ProcessingResponse()
    getattr(response, _TRAILERS_FIELD[phase]).SetInParent()
    return response


def immediate_response(
    status: int, body: str, headers: Sequence[tuple[str, str]] = ()
) -> ext_proc_pb2.ProcessingResponse:
    """Envoy answers the client directly with `status` and `body`; nothing goes upstream."""
    response = ext_proc_pb2.ProcessingResponse()
    immediate = response.immediate_response
    immediate.status.code = status
    immediate.body = body.encode()
    if headers:
        _set_header_mutation(immediate.headers, HeaderChanges(set=headers))
    return response


_TEXT_PLAIN = (("content-type", "text/plain; charset=utf-8"),)


def error_response(error: InferenceError) -> ext_proc_pb2.ProcessingResponse:
    """The `ImmediateResponse` for an error that has an HTTP status (see `igw.common.errors`)."""
    return immediate_response(error.status, error.body(), _TEXT_PLAIN)
