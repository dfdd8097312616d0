"""igw.common.envoy: the ext_proc replies Envoy receives, read back through `describe`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format

from igw.common import envoy, errors
from igw.common.envoy import BODY_CHUNK_LIMIT, BodyMode, HeaderChanges, Phase, ProcessingResponse
from igw.common.testing import messages

MIB = 1024 * 1024


def patterned(size: int) -> bytes:
    """Bytes whose position shows in their value, so a reordered or shifted chunk is caught."""
    return bytes(i % 251 for i in range(size))


@pytest.mark.parametrize(
    ("size", "chunks"),
    [
        # An empty body is still one chunk: in full-duplex mode Envoy forwards only what it gets.
        pytest.param(0, 1, id="empty"),
        pytest.param(1, 1, id="one-byte"),
        pytest.param(BODY_CHUNK_LIMIT, 1, id="exactly-limit"),
        pytest.param(BODY_CHUNK_LIMIT + 1, 2, id="limit-plus-one"),
        pytest.param(2 * BODY_CHUNK_LIMIT, 2, id="two-full"),
        pytest.param(5 * MIB, 85, id="5MiB"),
    ],
)
@pytest.mark.parametrize("phase", list(Phase), ids=lambda p: p.value)
def test_body_chunks_reassemble_with_eos_on_last(size: int, chunks: int, phase: Phase) -> None:
    body = patterned(size)

    views = messages.describe_all(envoy.body_chunks(phase, body, end_of_stream=True))

    assert len(views) == chunks
    assert {v.kind for v in views} == {f"{phase.value}_body"}
    assert all(v.streamed and len(v.body or b"") <= BODY_CHUNK_LIMIT for v in views)
    assert messages.streamed_body(views) == body
    assert [v.end_of_stream for v in views] == [False] * (chunks - 1) + [True]


@pytest.mark.parametrize("size", [0, BODY_CHUNK_LIMIT + 1], ids=["empty", "two-chunks"])
def test_body_chunks_without_end_of_stream_flag_none(size: int) -> None:
    """Used when trailers follow: an end of stream on the body would hang the request."""
    views = messages.describe_all(
        envoy.body_chunks(Phase.REQUEST, patterned(size), end_of_stream=False)
    )

    assert not any(v.end_of_stream for v in views)
    assert messages.streamed_body(views) == patterned(size)


def test_headers_response_carries_mutation_route_cache_and_metadata() -> None:
    changes = HeaderChanges(
        set=[("x-gateway-model-name", "llama"), ("x-tenant", "ü")], remove=["x-drop"]
    )
    metadata = {"envoy.lb": {"x-gateway-destination-endpoint": "10.0.0.1:8000"}}

    view = messages.describe(
        envoy.headers_response(
            Phase.REQUEST, changes, clear_route_cache=True, dynamic_metadata=metadata
        )
    )

    assert view.kind == "request_headers"
    assert view.set_headers == {"x-gateway-model-name": "llama", "x-tenant": "ü"}
    assert view.remove_headers == ["x-drop"]
    assert view.clear_route_cache
    assert view.dynamic_metadata == metadata
    assert view.body is None


def test_repeated_headers_responses_are_equal_and_independent() -> None:
    """Answers are built once and copied: each caller still gets its own message."""
    changes = HeaderChanges(set=(("x-gateway-destination-endpoint", "10.0.0.1:8000"),))
    metadata = {"envoy.lb": {"x-gateway-destination-endpoint": "10.0.0.1:8000"}}

    def reply() -> ProcessingResponse:
        return envoy.headers_response(
            Phase.REQUEST, changes, clear_route_cache=True, dynamic_metadata=metadata
        )

    first = reply()
    envoy.with_dynamic_metadata(first, {"extra": {"a": "b"}})  # a caller adds to its own copy
    second, third = reply(), reply()

    assert second is not third
    assert messages.describe(second) == messages.describe(third)
    assert messages.describe(second).dynamic_metadata == metadata


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # Struct numbers are doubles; True must stay a bool although `True == 1` as a key.
        pytest.param([1, True, 1.5, "1"], [(float, 1.0), (bool, True), (float, 1.5), (str, "1")],
                     id="equal-keys-other-types"),
        pytest.param([[1], [2]], [(list, [1.0]), (list, [2.0])], id="unhashable-values"),
    ],
)  # fmt: skip
def test_headers_responses_differ_by_metadata_value_and_type(
    values: list[object], expected: list[tuple[type, object]]
) -> None:
    views = [
        messages.describe(envoy.headers_response(Phase.REQUEST, dynamic_metadata={"ns": {"n": v}}))
        for v in values
    ]

    got = [(view.dynamic_metadata or {})["ns"]["n"] for view in views]
    assert [(type(value), value) for value in got] == expected


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"x-gateway-destination-endpoint-served": "10.0.0.1:8000"}, id="string"),
        pytest.param({"n": 1, "f": 1.5, "big": 2**60, "t": True, "none": None}, id="scalars"),
        pytest.param({"l": [1, "y", {"g": [2, {}]}], "s": {"i": [], "j": {}}}, id="nested"),
    ],
)
def test_filter_metadata_reads_structs_as_json_format_does(values: dict[str, object]) -> None:
    message = messages.request_headers({}, end_of_stream=True, metadata={"ns": values})
    reference = json_format.MessageToDict(message.metadata_context.filter_metadata["ns"])

    got = envoy.filter_metadata(message)

    assert got == {"ns": reference}
    assert repr(got["ns"]) == repr(reference)  # the same types too: numbers are floats


def test_headers_response_sets_by_overwriting() -> None:
    """A client's own header of the same name must be replaced, not joined with ours."""
    reply = envoy.headers_response(Phase.RESPONSE, HeaderChanges(set=[("a", "b")]))

    option = reply.response_headers.response.header_mutation.set_headers[0]
    assert option.append_action == base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


def test_empty_headers_response_changes_nothing() -> None:
    reply = envoy.headers_response(Phase.RESPONSE)

    assert messages.describe(reply) == messages.ReplyView("response_headers")
    assert not reply.response_headers.response.HasField("header_mutation")
    assert not reply.HasField("dynamic_metadata")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(None, None, id="headers-only"),
        pytest.param(b'{"model":"x"}', b'{"model":"x"}', id="replacement"),
        pytest.param(b"", b"", id="emptied"),
    ],
)
def test_buffered_body_response(body: bytes | None, expected: bytes | None) -> None:
    view = messages.describe(
        envoy.buffered_body_response(
            Phase.REQUEST,
            HeaderChanges(set=[("x-model", "m")]),
            body=body,
            clear_route_cache=True,
            dynamic_metadata={"ns": {"k": "v"}},
        )
    )

    assert view.kind == "request_body"
    assert not view.streamed
    assert view.body == expected
    assert view.set_headers == {"x-model": "m"}
    assert view.clear_route_cache
    assert view.dynamic_metadata == {"ns": {"k": "v"}}


@pytest.mark.parametrize(
    ("build", "kind"),
    [
        pytest.param(lambda: envoy.body_continue(Phase.REQUEST), "request_body", id="continue"),
        pytest.param(
            lambda: envoy.trailers_response(Phase.RESPONSE), "response_trailers", id="trailers"
        ),
    ],
)
def test_pass_through_replies_change_nothing(
    build: Callable[[], ProcessingResponse], kind: str
) -> None:
    assert messages.describe(build()) == messages.ReplyView(kind)


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        pytest.param(
            errors.BadRequestError("failed to parse request body: x"),
            400,
            b"inference error: BadRequest - failed to parse request body: x",
            id="bad-request",
        ),
        pytest.param(
            errors.ResourceExhaustedError("system saturated, sheddable request dropped"),
            429,
            b"inference error: ResourceExhausted - system saturated, sheddable request dropped",
            id="shed",
        ),
        pytest.param(
            errors.ServiceUnavailableError("no candidates"),
            503,
            b"inference error: ServiceUnavailable - no candidates",
            id="unavailable",
        ),
    ],
)
def test_error_response_is_plain_text_immediate_response(
    error: errors.InferenceError, status: int, body: bytes
) -> None:
    view = messages.describe(envoy.error_response(error))

    assert view.kind == "immediate_response"
    assert view.status == status
    assert view.body == body
    assert view.set_headers == {"content-type": "text/plain; charset=utf-8"}


def test_immediate_response_without_headers() -> None:
    reply = envoy.immediate_response(404, "nope")

    assert messages.describe(reply) == messages.ReplyView(
        "immediate_response", body=b"nope", status=404
    )
    assert not reply.immediate_response.HasField("headers")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(base_pb2.HeaderValue(key="a", raw_value=b"raw"), "raw", id="raw-only"),
        pytest.param(
            base_pb2.HeaderValue(key="a", value="old", raw_value=b"raw"), "raw", id="raw-wins"
        ),
        pytest.param(base_pb2.HeaderValue(key="a", value="plain"), "plain", id="value-fallback"),
        pytest.param(base_pb2.HeaderValue(key="a", raw_value=b"caf\xc3\xa9"), "café", id="utf8"),
        pytest.param(base_pb2.HeaderValue(key="a", raw_value=b"\xff"), "\ufffd", id="invalid-utf8"),
    ],
)
def test_headers_of_prefers_raw_value(header: base_pb2.HeaderValue, expected: str) -> None:
    assert envoy.headers_of(base_pb2.HeaderMap(headers=[header])) == {"a": expected}


def test_headers_of_reads_builder_headers() -> None:
    message = messages.request_headers({":path": "/v1/chat/completions", "x-a": "1"})

    assert envoy.headers_of(message.request_headers.headers) == {
        ":path": "/v1/chat/completions",
        "x-a": "1",
    }


def test_filter_metadata() -> None:
    hint = {"envoy.lb.subset_hint": {"x-gateway-destination-endpoint-subset": ["10.0.0.1:80"]}}

    assert envoy.filter_metadata(messages.request_headers({}, metadata=hint)) == hint
    assert envoy.filter_metadata(messages.request_headers({})) == {}


@pytest.mark.parametrize(
    "modes",
    [
        pytest.param((BodyMode.FULL_DUPLEX_STREAMED, BodyMode.NONE), id="duplex-none"),
        pytest.param((BodyMode.BUFFERED, BodyMode.STREAMED), id="buffered-streamed"),
        # NONE/NONE is still an announcement, distinct from "not sent".
        pytest.param((BodyMode.NONE, BodyMode.NONE), id="none-none"),
    ],
)
def test_protocol_body_modes(modes: tuple[BodyMode, BodyMode]) -> None:
    assert envoy.protocol_body_modes(messages.request_headers({}, modes=modes)) == modes


def test_protocol_body_modes_absent() -> None:
    assert envoy.protocol_body_modes(messages.request_headers({})) is None


@pytest.mark.parametrize(
    ("request_mode", "response_mode"),
    [
        pytest.param(99, 0, id="unknown-request-mode"),
        pytest.param(4, 7, id="unknown-response-mode"),
        # Not FULL_DUPLEX_STREAMED read from the end of the enum.
        pytest.param(-1, 0, id="negative"),
    ],
)
def test_protocol_body_modes_unknown_is_no_announcement(
    request_mode: int, response_mode: int
) -> None:
    """Found by bench.fuzz_extproc: an unknown mode number raised IndexError (gRPC INTERNAL)."""
    message = messages.request_headers({})
    message.protocol_config.request_body_mode = request_mode
    message.protocol_config.response_body_mode = response_mode
    assert envoy.protocol_body_modes(message) is None


def test_lazy_headers_read_like_a_dict() -> None:
    header_map = base_pb2.HeaderMap()
    header_map.headers.add(key="x-raw", raw_value="caf\xe9".encode())
    header_map.headers.add(key="x-plain", value="v")
    headers = envoy.LazyHeaders(header_map)
    assert headers.get("x-raw") == "café"
    assert headers["x-plain"] == "v"
    assert headers.get("x-absent") is None
    assert headers.get("x-absent", "fallback") == "fallback"
    assert "x-plain" in headers
    assert "x-absent" not in headers
    assert dict(headers) == {"x-raw": "café", "x-plain": "v"}
