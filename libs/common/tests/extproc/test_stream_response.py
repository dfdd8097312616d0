"""igw.common.extproc Stream, response side: headers, body echo and trailers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from igw.common.envoy import (
    BODY_CHUNK_LIMIT,
    BodyMode,
    HeaderChanges,
    ProcessingRequest,
)
from igw.common.extproc import RequestVerdict
from igw.common.testing import messages
from igw.common.testing.exchanges import (
    RecordingExchange,
    patterned,
    play,
    stream_for,
)
from igw.common.testing.messages import ReplyView

DUPLEX = BodyMode.FULL_DUPLEX_STREAMED
HEADERS = {":method": "POST", ":path": "/v1/chat/completions", "content-type": "application/json"}
GET = {":method": "GET", ":path": "/v1/models"}
ROUTE = {"envoy.lb": {"x-gateway-destination-endpoint": "10.0.0.1:8000"}}
VERDICT = RequestVerdict(
    headers=HeaderChanges(set=[("x-gateway-destination-endpoint", "10.0.0.1:8000")]),
    dynamic_metadata=ROUTE,
)


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


SSE = {":status": "200", "content-type": "text/event-stream"}


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param(BodyMode.STREAMED, id="streamed"),
        pytest.param(BodyMode.BUFFERED, id="buffered"),
    ],
)
async def test_declined_body_is_skipped_with_continue_and_replace(mode: BodyMode) -> None:
    exchange = RecordingExchange(
        response_changes=HeaderChanges(set=[("x-served", "yes")]), body_wanted=False
    )
    stream = stream_for(exchange, response_mode=mode)

    [[reply]] = await play(stream, messages.response_headers(SSE))

    # Header changes still apply; no body mutation, so Envoy forwards the body untouched.
    assert reply == ReplyView("response_headers", set_headers={"x-served": "yes"}, skip_body=True)
    assert exchange.body_wanted_asked == 1
    # No response end will come, yet the request was answered: close(completed=True) follows.
    assert (stream.completed, stream.body_skipped) == (True, True)


async def test_chunk_after_a_skipped_body_passes_without_the_exchange() -> None:
    exchange = RecordingExchange(body_wanted=False)
    stream = stream_for(exchange, response_mode=BodyMode.STREAMED)

    _, [reply] = await play(
        stream,
        messages.response_headers(SSE),
        messages.response_body(b"data: a\n\n", end_of_stream=False),
    )

    assert reply == ReplyView("response_body")
    assert exchange.response_chunks == []


async def test_full_duplex_never_skips_the_body() -> None:
    # Envoy has already handed body chunks over before the headers reply: skipping would drop
    # them and the client would get a 200 with SSE events missing. The hook is not even asked.
    exchange = RecordingExchange(body_wanted=False)
    stream = stream_for(exchange, response_mode=DUPLEX)

    [headers], [chunk] = await play(
        stream,
        messages.response_headers(SSE),
        messages.response_body(b"data: a\n\n", end_of_stream=True),
    )

    assert headers == ReplyView("response_headers")
    assert chunk == ReplyView(
        "response_body", body=b"data: a\n\n", streamed=True, end_of_stream=True
    )
    assert exchange.body_wanted_asked == 0
    assert (stream.completed, stream.body_skipped) == (True, False)


async def test_wanted_body_is_read_in_streamed_mode() -> None:
    exchange = RecordingExchange(body_wanted=True)
    stream = stream_for(exchange, response_mode=BodyMode.STREAMED)

    [headers], [first], [last] = await play(
        stream,
        messages.response_headers(SSE),
        messages.response_body(b"data: a\n\n", end_of_stream=False),
        messages.response_body(b"data: [DONE]\n\n", end_of_stream=True),
    )

    assert headers == ReplyView("response_headers")
    # STREAMED mode: Envoy keeps each chunk, so an unchanged one is a plain continue.
    assert [first, last] == [ReplyView("response_body"), ReplyView("response_body")]
    assert exchange.response_chunks == [(b"data: a\n\n", False), (b"data: [DONE]\n\n", True)]
    assert (stream.completed, stream.body_skipped) == (True, False)


async def test_bodyless_response_does_not_ask() -> None:
    exchange = RecordingExchange(body_wanted=False)
    stream = stream_for(exchange, response_mode=BodyMode.STREAMED)

    [[reply]] = await play(
        stream, messages.response_headers({":status": "204"}, end_of_stream=True)
    )

    assert reply == ReplyView("response_headers")
    assert exchange.body_wanted_asked == 0
    assert stream.completed


COST: dict[str, dict[str, object]] = {"envoy.lb": {"x-gateway-inference-request-cost": 42.0}}


@dataclass
class ReportingExchange(RecordingExchange):
    """Has dynamic metadata for the response's end, as the EPP's response-body plugins do."""

    metadata: dict[str, dict[str, object]] | None = field(default_factory=lambda: COST)
    metadata_asked: int = 0

    def response_dynamic_metadata(self) -> dict[str, dict[str, object]] | None:
        self.metadata_asked += 1
        return self.metadata


@pytest.mark.parametrize(
    ("mode", "last"),
    [
        pytest.param(
            DUPLEX,
            ReplyView(
                "response_body", body=b"data: [DONE]\n\n", streamed=True, end_of_stream=True,
                dynamic_metadata=COST,
            ),
            id="full-duplex",
        ),
        pytest.param(
            BodyMode.STREAMED, ReplyView("response_body", dynamic_metadata=COST), id="streamed"
        ),
    ],
)  # fmt: skip
async def test_end_metadata_rides_on_the_last_body_reply_only(
    mode: BodyMode, last: ReplyView
) -> None:
    exchange = ReportingExchange()
    stream = stream_for(exchange, response_mode=mode)

    [first], [end] = await play(
        stream,
        messages.response_body(b"data: a\n\n", end_of_stream=False),
        messages.response_body(b"data: [DONE]\n\n", end_of_stream=True),
    )

    assert first.dynamic_metadata == {}
    assert end == last
    assert exchange.metadata_asked == 1


async def test_end_metadata_goes_on_the_last_of_several_chunks() -> None:
    body = patterned(BODY_CHUNK_LIMIT + 1)
    stream = stream_for(ReportingExchange(), response_mode=DUPLEX)

    [replies] = await play(stream, messages.response_body(body, end_of_stream=True))

    assert [r.dynamic_metadata for r in replies] == [{}, COST]


async def test_end_metadata_on_a_buffered_body() -> None:
    stream = stream_for(ReportingExchange(rewrite=bytes.upper), response_mode=BodyMode.BUFFERED)

    [[reply]] = await play(stream, messages.response_body(b"{}", end_of_stream=False))

    assert reply == ReplyView("response_body", body=b"{}", dynamic_metadata=COST)


async def test_trailers_end_carries_the_metadata() -> None:
    exchange = ReportingExchange()
    stream = stream_for(exchange, response_mode=DUPLEX)

    _, [trailers] = await play(
        stream,
        messages.response_body(b"frame", end_of_stream=False),
        messages.response_trailers({"grpc-status": "0"}),
    )

    assert trailers == ReplyView("response_trailers", dynamic_metadata=COST)
    assert exchange.metadata_asked == 1


@pytest.mark.parametrize("metadata", [None, {}], ids=["none", "empty"])
async def test_no_end_metadata_leaves_the_reply_bare(
    metadata: dict[str, dict[str, object]] | None,
) -> None:
    stream = stream_for(ReportingExchange(metadata=metadata), response_mode=DUPLEX)

    [[end]] = await play(stream, messages.response_body(b"x", end_of_stream=True))

    assert end == ReplyView("response_body", body=b"x", streamed=True, end_of_stream=True)


async def test_end_metadata_is_not_asked_for_a_skipped_body() -> None:
    exchange = ReportingExchange(body_wanted=False)
    stream = stream_for(exchange, response_mode=BodyMode.STREAMED)

    [[reply]] = await play(stream, messages.response_headers(SSE))

    assert reply.skip_body
    assert reply.dynamic_metadata == {}
    assert exchange.metadata_asked == 0
