"""igw.common.extproc Stream: Envoy's message sequencing, driven message by message.

Each test plays the messages Envoy sends for one HTTP request and checks the replies Envoy would
get, in order, plus what the exchange (the service's logic) was shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pytest

from igw.common.envoy import (
    BODY_CHUNK_LIMIT,
    NO_CHANGES,
    BodyMode,
    HeaderChanges,
    ProcessingRequest,
)
from igw.common.errors import BadRequestError
from igw.common.extproc import PASS_THROUGH, HttpRequest, RequestVerdict, Stream
from igw.common.testing import messages
from igw.common.testing.messages import ReplyView

DUPLEX = BodyMode.FULL_DUPLEX_STREAMED
HEADERS = {":method": "POST", ":path": "/v1/chat/completions", "content-type": "application/json"}
GET = {":method": "GET", ":path": "/v1/models"}
ROUTE = {"envoy.lb": {"x-gateway-destination-endpoint": "10.0.0.1:8000"}}
VERDICT = RequestVerdict(
    headers=HeaderChanges(set=[("x-gateway-destination-endpoint", "10.0.0.1:8000")]),
    dynamic_metadata=ROUTE,
)


@dataclass
class RecordingExchange:
    """Answers with fixed values and records every call the stream makes."""

    verdict: RequestVerdict = PASS_THROUGH
    response_changes: HeaderChanges = NO_CHANGES
    rewrite: Callable[[bytes], bytes] | None = None
    error: Exception | None = None
    requests: list[HttpRequest] = field(default_factory=list)
    response_headers_seen: list[tuple[Mapping[str, str], bool]] = field(default_factory=list)
    response_chunks: list[tuple[bytes, bool]] = field(default_factory=list)
    closed: list[bool] = field(default_factory=list)

    async def request(self, request: HttpRequest) -> RequestVerdict:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return self.verdict

    async def response_headers(
        self, headers: Mapping[str, str], end_of_stream: bool
    ) -> HeaderChanges:
        self.response_headers_seen.append((dict(headers), end_of_stream))
        return self.response_changes

    async def response_body(self, chunk: bytes, end_of_stream: bool) -> bytes:
        self.response_chunks.append((chunk, end_of_stream))
        return chunk if self.rewrite is None else self.rewrite(chunk)

    def close(self, completed: bool) -> None:
        self.closed.append(completed)


def stream_for(
    exchange: RecordingExchange,
    request_mode: BodyMode = DUPLEX,
    response_mode: BodyMode = BodyMode.NONE,
) -> Stream:
    return Stream(exchange, request_mode, response_mode)


async def play(stream: Stream, *sent: ProcessingRequest) -> list[list[ReplyView]]:
    """The replies to each message, in order."""
    return [messages.describe_all(await stream.handle(message)) for message in sent]


def patterned(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def split(body: bytes, sizes: list[int]) -> list[bytes]:
    pieces, start = [], 0
    for size in sizes:
        pieces.append(body[start : start + size])
        start += size
    assert start == len(body)
    return pieces


def body_messages(pieces: list[bytes]) -> list[ProcessingRequest]:
    return [
        messages.request_body(piece, end_of_stream=i == len(pieces) - 1)
        for i, piece in enumerate(pieces)
    ]


@pytest.mark.parametrize(
    "sizes",
    [
        pytest.param([2_000], id="one-chunk"),
        pytest.param([1, 16_383, 70_000, 63_616], id="many-chunks"),
        # Envoy often ends a body with an empty chunk carrying only the end of stream.
        pytest.param([100_000, 50_000, 0], id="empty-final-chunk"),
        pytest.param([0], id="empty-body"),
    ],
)
async def test_duplex_holds_headers_until_body_ends(sizes: list[int]) -> None:
    body = patterned(sum(sizes))
    exchange = RecordingExchange(verdict=VERDICT)
    stream = stream_for(exchange)

    *held, final = await play(
        stream, messages.request_headers(HEADERS), *body_messages(split(body, sizes))
    )

    assert held == [[]] * len(sizes)
    headers, *chunks = final
    assert headers.kind == "request_headers"
    assert headers.set_headers == {"x-gateway-destination-endpoint": "10.0.0.1:8000"}
    assert headers.clear_route_cache
    assert headers.dynamic_metadata == ROUTE
    assert {c.kind for c in chunks} == {"request_body"}
    assert all(len(c.body or b"") <= BODY_CHUNK_LIMIT for c in chunks)
    assert messages.streamed_body(chunks) == body
    assert [c.end_of_stream for c in chunks] == [False] * (len(chunks) - 1) + [True]
    [seen] = exchange.requests
    assert (seen.body, seen.header_only, seen.body_mode) == (body, False, DUPLEX)
    assert seen.headers == HEADERS
    assert seen.path == "/v1/chat/completions"


@pytest.mark.parametrize(
    ("mode", "headers", "header_only"),
    [
        pytest.param(DUPLEX, GET, True, id="duplex-get"),
        pytest.param(BodyMode.BUFFERED, GET, True, id="buffered-get"),
        # A filter that sends no body: decided from the headers, though a body exists.
        pytest.param(BodyMode.NONE, HEADERS, False, id="mode-none-post"),
    ],
)
async def test_decided_from_headers_alone(
    mode: BodyMode, headers: dict[str, str], header_only: bool
) -> None:
    exchange = RecordingExchange(verdict=VERDICT)
    stream = stream_for(exchange, mode)

    [[reply]] = await play(stream, messages.request_headers(headers, end_of_stream=header_only))

    assert reply.kind == "request_headers"
    assert reply.set_headers == {"x-gateway-destination-endpoint": "10.0.0.1:8000"}
    assert reply.dynamic_metadata == ROUTE
    assert reply.body is None
    [seen] = exchange.requests
    assert (seen.header_only, seen.body) == (header_only, b"")


async def test_filter_metadata_reaches_the_exchange() -> None:
    hint = {"envoy.lb.subset_hint": {"x-gateway-destination-endpoint-subset": ["10.0.0.2"]}}
    exchange = RecordingExchange()

    await play(
        stream_for(exchange), messages.request_headers(GET, end_of_stream=True, metadata=hint)
    )

    assert exchange.requests[0].metadata == hint


async def test_trailers_after_body_keep_body_open() -> None:
    """With trailers coming, a body chunk with end of stream would hang the request in Envoy."""
    body = patterned(BODY_CHUNK_LIMIT + 10)
    exchange = RecordingExchange(verdict=VERDICT)
    stream = stream_for(exchange)

    *held, final = await play(
        stream,
        messages.request_headers(HEADERS),
        messages.request_body(body[:5], end_of_stream=False),
        messages.request_body(body[5:], end_of_stream=False),
        messages.request_trailers({"x-checksum": "abc"}),
    )

    assert held == [[], [], []]
    assert [r.kind for r in final] == [
        "request_headers",
        "request_body",
        "request_body",
        "request_trailers",
    ]
    assert not any(r.end_of_stream for r in final)
    assert messages.streamed_body(final) == body
    assert exchange.requests[0].body == body


async def test_body_chunks_after_end_of_stream_are_ignored() -> None:
    """Upstream issue #2988: a repeated end-of-stream chunk corrupted large bodies."""
    exchange = RecordingExchange()
    stream = stream_for(exchange)

    replies = await play(
        stream,
        messages.request_headers(HEADERS),
        messages.request_body(b'{"model":"m"}', end_of_stream=True),
        messages.request_body(b'{"model":"m"}', end_of_stream=True),
        messages.request_body(b"late", end_of_stream=False),
    )

    assert replies[2:] == [[], []]
    assert messages.streamed_body(replies[1]) == b'{"model":"m"}'
    assert len(exchange.requests) == 1


@pytest.mark.parametrize(
    ("replacement", "body", "headers"),
    [
        pytest.param(None, None, {"x-model": "m"}, id="headers-only"),
        pytest.param(
            b'{"model":"m2"}',
            b'{"model":"m2"}',
            {"x-model": "m", "content-length": "14"},
            id="new-body",
        ),
    ],
)
async def test_buffered_answers_headers_empty_then_decides_on_body(
    replacement: bytes | None, body: bytes | None, headers: dict[str, str]
) -> None:
    verdict = RequestVerdict(headers=HeaderChanges(set=[("x-model", "m")]), body=replacement)
    exchange = RecordingExchange(verdict=verdict)
    stream = stream_for(exchange, BodyMode.BUFFERED)

    [[first], [second]] = await play(
        stream,
        messages.request_headers(HEADERS),
        messages.request_body(b'{"model":"m"}', end_of_stream=True),
    )

    assert first == ReplyView("request_headers")
    assert second.kind == "request_body"
    assert not second.streamed
    assert second.body == body
    assert second.set_headers == headers
    assert second.clear_route_cache
    assert exchange.requests[0].body == b'{"model":"m"}'
    assert exchange.requests[0].body_mode is BodyMode.BUFFERED


async def test_duplex_replacement_body_sets_content_length() -> None:
    new_body = patterned(BODY_CHUNK_LIMIT * 2 + 1)
    exchange = RecordingExchange(verdict=RequestVerdict(body=new_body))
    stream = stream_for(exchange)

    [_, final] = await play(
        stream,
        messages.request_headers({**HEADERS, "content-length": "2"}),
        messages.request_body(b"{}", end_of_stream=True),
    )

    assert final[0].set_headers == {"content-length": str(len(new_body))}
    assert messages.streamed_body(final[1:]) == new_body
    assert len(final) == 4


@pytest.mark.parametrize(
    ("default", "announced", "headers_reply"),
    [
        pytest.param(BodyMode.BUFFERED, DUPLEX, [], id="duplex-announced-holds"),
        pytest.param(
            DUPLEX, BodyMode.BUFFERED, [ReplyView("request_headers")], id="buffered-announced"
        ),
    ],
)
async def test_protocol_config_overrides_default_mode(
    default: BodyMode, announced: BodyMode, headers_reply: list[ReplyView]
) -> None:
    exchange = RecordingExchange()
    stream = stream_for(exchange, default)

    [replies] = await play(
        stream, messages.request_headers(HEADERS, modes=(announced, BodyMode.NONE))
    )

    assert replies == headers_reply
    assert stream.request_mode is announced


async def test_streamed_mode_passes_through_undecided() -> None:
    """STREAMED cannot carry a body-based decision, so the exchange is never asked."""
    exchange = RecordingExchange(verdict=VERDICT)
    stream = stream_for(exchange, BodyMode.STREAMED)

    replies = await play(
        stream,
        messages.request_headers(HEADERS),
        messages.request_body(b"{", end_of_stream=False),
        messages.request_body(b"}", end_of_stream=True),
    )

    assert replies == [
        [ReplyView("request_headers")],
        [ReplyView("request_body")],
        [ReplyView("request_body")],
    ]
    assert exchange.requests == []


async def test_exchange_error_propagates() -> None:
    exchange = RecordingExchange(error=BadRequestError("model not found in request body"))
    stream = stream_for(exchange)
    await stream.handle(messages.request_headers(HEADERS))

    with pytest.raises(BadRequestError):
        await stream.handle(messages.request_body(b"{}", end_of_stream=True))


async def test_duplex_response_is_echoed_with_same_end_of_stream() -> None:
    exchange = RecordingExchange(
        response_changes=HeaderChanges(set=[("x-went-into-resp-headers", "true")]),
        rewrite=bytes.upper,
    )
    stream = stream_for(exchange, response_mode=DUPLEX)

    [[headers], first, last] = await play(
        stream,
        messages.response_headers({":status": "200", "content-type": "text/event-stream"}),
        messages.response_body(b"data: a\n\n", end_of_stream=False),
        messages.response_body(b"data: [done]\n\n", end_of_stream=True),
    )

    assert headers.kind == "response_headers"
    assert headers.set_headers == {"x-went-into-resp-headers": "true"}
    assert first == [ReplyView("response_body", body=b"DATA: A\n\n", streamed=True)]
    assert last == [
        ReplyView("response_body", body=b"DATA: [DONE]\n\n", streamed=True, end_of_stream=True)
    ]
    assert exchange.response_headers_seen == [
        ({":status": "200", "content-type": "text/event-stream"}, False)
    ]
    assert exchange.response_chunks == [(b"data: a\n\n", False), (b"data: [done]\n\n", True)]
    assert stream.completed


async def test_large_duplex_response_chunk_is_split() -> None:
    body = patterned(BODY_CHUNK_LIMIT + 1)
    stream = stream_for(RecordingExchange(), response_mode=DUPLEX)

    [replies] = await play(stream, messages.response_body(body, end_of_stream=True))

    assert [len(r.body or b"") for r in replies] == [BODY_CHUNK_LIMIT, 1]
    assert messages.streamed_body(replies) == body
    assert [r.end_of_stream for r in replies] == [False, True]


@pytest.mark.parametrize(
    ("rewrite", "expected"),
    [
        # Unchanged: a plain "continue", not the body copied back over the wire.
        pytest.param(None, ReplyView("response_body"), id="unchanged"),
        pytest.param(bytes.upper, ReplyView("response_body", body=b'{"MODEL":"M"}'), id="replaced"),
    ],
)
async def test_buffered_response_body(
    rewrite: Callable[[bytes], bytes] | None, expected: ReplyView
) -> None:
    exchange = RecordingExchange(rewrite=rewrite)
    stream = stream_for(exchange, response_mode=BodyMode.BUFFERED)

    [[reply]] = await play(stream, messages.response_body(b'{"model":"m"}', end_of_stream=False))

    assert reply == expected
    # A buffered body is the whole body, whatever the flag says.
    assert exchange.response_chunks == [(b'{"model":"m"}', True)]
    assert stream.completed


async def test_response_trailers_finalize() -> None:
    exchange = RecordingExchange()
    stream = stream_for(exchange, response_mode=DUPLEX)

    replies = await play(
        stream,
        messages.response_headers({":status": "200", "content-type": "application/grpc"}),
        messages.response_body(b"frame", end_of_stream=False),
        messages.response_trailers({"grpc-status": "0"}),
    )

    assert replies[2] == [ReplyView("response_trailers")]
    assert exchange.response_chunks == [(b"frame", False), (b"", True)]
    assert stream.completed


@dataclass
class HoldingExchange(RecordingExchange):
    """Rewrites the response only once it has all of it, as a non-streaming rewrite must."""

    held: bytearray = field(default_factory=bytearray)

    async def response_body(self, chunk: bytes, end_of_stream: bool) -> bytes:
        await super().response_body(chunk, end_of_stream)
        self.held += chunk
        return bytes(self.held).upper() if end_of_stream else b""


@pytest.mark.parametrize(
    ("ending", "expected"),
    [
        pytest.param(
            messages.response_body(b"-end", end_of_stream=True),
            [ReplyView("response_body", body=b"FRAME-END", streamed=True, end_of_stream=True)],
            id="body-end-of-stream",
        ),
        # gRPC model servers end with trailers: the held bytes must not be lost, and the body
        # stays open for the trailers.
        pytest.param(
            messages.response_trailers({"grpc-status": "0"}),
            [
                ReplyView("response_body", body=b"FRAME", streamed=True),
                ReplyView("response_trailers"),
            ],
            id="trailers",
        ),
    ],
)
async def test_bytes_held_until_response_end_are_sent(
    ending: ProcessingRequest, expected: list[ReplyView]
) -> None:
    stream = stream_for(HoldingExchange(), response_mode=DUPLEX)

    first, last = await play(stream, messages.response_body(b"frame", end_of_stream=False), ending)

    assert first == [ReplyView("response_body", body=b"", streamed=True)]
    assert last == expected


async def test_header_only_response_completes() -> None:
    exchange = RecordingExchange()
    stream = stream_for(exchange, response_mode=DUPLEX)
    before = stream.completed

    await play(stream, messages.response_headers({":status": "204"}, end_of_stream=True))

    assert (before, stream.completed) == (False, True)
    assert exchange.response_headers_seen == [({":status": "204"}, True)]
