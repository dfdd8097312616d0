"""Usage from JSON bodies and SSE streams, split lines reassembled, both cached spellings."""

import pytest

from igw.epp.framework.parsing import Usage
from igw.epp.parsers import OpenAIUsageReader

CHAT_USAGE = (
    b'{"object":"chat.completion","usage":{"prompt_tokens":7,"completion_tokens":3,'
    b'"total_tokens":10,"prompt_tokens_details":{"cached_tokens":4}}}'
)
SSE = (
    b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n'
    b"data: [DONE]\n\n"
)
RESPONSES_SSE = (
    b"event: response.completed\n"
    b'data: {"type":"response.completed","response":{"usage":{"input_tokens":9,'
    b'"output_tokens":1,"total_tokens":10,"input_tokens_details":{"cached_tokens":2}}}}\n\n'
)


def feed_all(chunks: list[bytes], *, streaming: bool) -> Usage | None:
    reader = OpenAIUsageReader()
    usage = None
    for i, chunk in enumerate(chunks):
        usage = reader.feed(chunk, end_of_stream=i == len(chunks) - 1, streaming=streaming)
    return usage


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        pytest.param([CHAT_USAGE], Usage(7, 3, 10, 4), id="chat-completion"),
        pytest.param([CHAT_USAGE[:20], CHAT_USAGE[20:50], CHAT_USAGE[50:]], Usage(7, 3, 10, 4),
                     id="split-across-chunks"),
        pytest.param([b'{"usage":{"prompt_tokens":1,"prompt_token_details":{"cached_tokens":1}}}'],
                     Usage(1, 0, 0, 1), id="upstream-singular-spelling"),
        pytest.param([b'{"object":"response","usage":{"input_tokens":4,"output_tokens":6}}'],
                     Usage(4, 6, 0, None), id="responses-names"),
        pytest.param([b'{"usage":{"prompt_tokens":"12"}}'], Usage(12, 0, 0, None),
                     id="numeric-string"),
        pytest.param([b'{"no":"usage"}'], None, id="no-usage"),
        pytest.param([b"{not json usage"], None, id="invalid-json"),
        pytest.param([b""], None, id="empty"),
        pytest.param([b'{"usage":"x"}'], None, id="usage-not-object"),
    ],
)  # fmt: skip
def test_json_usage(chunks: list[bytes], expected: Usage | None) -> None:
    assert feed_all(chunks, streaming=False) == expected


def every_split(data: bytes) -> list[list[bytes]]:
    return [[data[:i], data[i:]] for i in range(1, len(data))]


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        pytest.param([SSE], Usage(5, 2, 7, None), id="one-chunk"),
        pytest.param([RESPONSES_SSE], Usage(9, 1, 10, 2), id="responses-completed"),
        pytest.param([b'data:{"usage":{"prompt_tokens":1}}\n'], Usage(1, 0, 0, None),
                     id="no-space-after-colon"),
        pytest.param([b'data: {"usage":{"prompt_tokens":1}}'], Usage(1, 0, 0, None),
                     id="last-line-without-newline"),
        pytest.param([b"data: [DONE]\n\n"], None, id="done-only"),
        pytest.param([b'data: {"usage":{"prompt_tokens":1}}\r\n\r\n'], Usage(1, 0, 0, None),
                     id="crlf"),
        pytest.param([b'data: {"type":"response.created","response":{"usage":null}}\n'], None,
                     id="responses-other-event"),
    ],
)  # fmt: skip
def test_sse_usage(chunks: list[bytes], expected: Usage | None) -> None:
    assert feed_all(chunks, streaming=True) == expected


def test_sse_usage_found_at_every_split_point() -> None:
    for chunks in every_split(SSE):
        assert feed_all(chunks, streaming=True) == Usage(5, 2, 7, None), chunks


def test_first_usage_wins() -> None:
    first = b'data: {"usage":{"prompt_tokens":1}}\n'
    second = b'data: {"usage":{"prompt_tokens":2}}\n'
    assert feed_all([first, second, b""], streaming=True) == Usage(1, 0, 0, None)
