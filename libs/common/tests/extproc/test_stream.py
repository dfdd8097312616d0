"""igw.common.extproc Stream: Envoy's message sequencing, driven message by message.

Each test plays the messages Envoy sends for one HTTP request and checks the replies Envoy would
get, in order, plus what the exchange (the service's logic) was shown.
"""

from __future__ import annotations

import pytest

from igw.common.envoy import (
    BODY_CHUNK_LIMIT,
    BodyMode,
    HeaderChanges,
    ProcessingRequest,
)
from igw.common.errors import BadRequestError, StreamAbortError
from igw.common.extproc import ImmediateAnswer, RequestVerdict
from igw.common.testing import messages
from igw.common.testing.exchanges import (
    RecordingExchange,
    body_messages,
    patterned,
    play,
    split,
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


@pytest.mark.parametrize(
    ("mode", "first"),
    [
        pytest.param(DUPLEX, messages.request_headers(GET, end_of_stream=True), id="header-only"),
        pytest.param(BodyMode.NONE, messages.request_headers(HEADERS), id="mode-none"),
        pytest.param(DUPLEX, messages.request_headers(HEADERS), id="undecided"),
    ],
)
async def test_request_headers_twice_abort_the_stream(
    mode: BodyMode, first: ProcessingRequest
) -> None:
    """Found by bench.fuzz_extproc: a second headers message made a second `request` call, and
    the EPP counted the request running twice and finished it once (a leaked gauge)."""
    exchange = RecordingExchange(verdict=VERDICT)
    stream = stream_for(exchange, mode)
    await stream.handle(first)

    with pytest.raises(StreamAbortError, match="request headers sent twice"):
        await stream.handle(messages.request_headers(GET, end_of_stream=True))
    assert len(exchange.requests) <= 1


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(messages.request_body(b"{}", end_of_stream=True), id="body"),
        pytest.param(messages.request_trailers(), id="trailers"),
    ],
)
async def test_duplex_request_before_its_headers_aborts_the_stream(
    first: ProcessingRequest,
) -> None:
    """Found by bench.fuzz_extproc: the stream answered with a headers reply to headers never
    sent, and headers coming after made a second `request` call (the EPP leaked a request)."""
    exchange = RecordingExchange(verdict=VERDICT)
    stream = stream_for(exchange, DUPLEX)

    with pytest.raises(StreamAbortError, match="before the request headers"):
        await stream.handle(first)
    assert exchange.requests == []


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(messages.response_headers({":status": "200"}), id="headers"),
        pytest.param(messages.response_body(b"{}", end_of_stream=True), id="body"),
        pytest.param(messages.response_trailers(), id="trailers"),
    ],
)
@pytest.mark.parametrize("mode", [DUPLEX, BodyMode.BUFFERED])
async def test_a_response_before_the_request_was_decided_aborts_the_stream(
    mode: BodyMode, response: ProcessingRequest
) -> None:
    """Found by bench.fuzz_extproc: the EPP saw the response end before the request it then
    counted as running, and never counted it finished."""
    exchange = RecordingExchange(verdict=VERDICT)
    stream = stream_for(exchange, mode, BodyMode.FULL_DUPLEX_STREAMED)
    await stream.handle(messages.request_headers(HEADERS))

    with pytest.raises(StreamAbortError, match="before the request was decided"):
        await stream.handle(response)
    assert (exchange.response_headers_seen, exchange.response_chunks) == ([], [])


async def test_streamed_mode_takes_the_response_undecided() -> None:
    # STREAMED passes the request through undecided, so its response is no protocol error.
    exchange = RecordingExchange(verdict=VERDICT)
    stream = stream_for(exchange, BodyMode.STREAMED, BodyMode.STREAMED)
    await play(stream, messages.request_headers(HEADERS))

    [[reply]] = await play(stream, messages.response_headers({":status": "200"}))
    assert reply.kind == "response_headers"


async def test_headers_after_a_buffered_body_decided_abort_the_stream() -> None:
    # request_header_mode SKIP: the buffered body alone decides, as before.
    exchange = RecordingExchange(verdict=VERDICT)
    stream = stream_for(exchange, BodyMode.BUFFERED)
    [[reply]] = await play(stream, messages.request_body(b"{}", end_of_stream=True))
    assert reply.kind == "request_body"

    with pytest.raises(StreamAbortError, match="after the request was decided"):
        await stream.handle(messages.request_headers(GET, end_of_stream=True))
    assert len(exchange.requests) == 1


ANSWER = ImmediateAnswer(200, '{"object":"list"}', (("content-type", "application/json"),))
BODY = messages.request_body(b'{"model":"m"}', end_of_stream=True)


@pytest.mark.parametrize(
    ("mode", "sent"),
    [
        pytest.param(DUPLEX, [messages.request_headers(GET, end_of_stream=True)], id="header-only"),
        pytest.param(BodyMode.BUFFERED, [messages.request_headers(HEADERS), BODY], id="buffered"),
        pytest.param(DUPLEX, [messages.request_headers(HEADERS), BODY], id="duplex"),
        # With trailers coming, the answer must come alone: no trailers reply after it.
        pytest.param(
            DUPLEX,
            [
                messages.request_headers(HEADERS),
                messages.request_body(b"{}", end_of_stream=False),
                messages.request_trailers(),
            ],
            id="duplex-trailers",
        ),
    ],
)
async def test_an_immediate_answer_replaces_the_request_replies(
    mode: BodyMode, sent: list[ProcessingRequest]
) -> None:
    # Header changes on an answering verdict are ignored: nothing goes upstream.
    exchange = RecordingExchange(verdict=RequestVerdict(headers=VERDICT.headers, answer=ANSWER))
    stream = stream_for(exchange, mode)

    *held, last = await play(stream, *sent)

    assert all(replies in ([], [ReplyView("request_headers")]) for replies in held)
    assert last == [
        ReplyView(
            "immediate_response",
            set_headers={"content-type": "application/json"},
            body=b'{"object":"list"}',
            status=200,
        )
    ]
    assert stream.answered
    assert stream.completed
