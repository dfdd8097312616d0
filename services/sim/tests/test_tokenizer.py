"""igw.sim.tokenizer: 4 bytes per token, stable ids, and a chat template that keeps prefixes."""

from __future__ import annotations

import hashlib
import json

import pytest

from igw.sim import tokenizer


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        pytest.param("", 0, id="empty"),
        pytest.param("abcd", 1, id="one-full-chunk"),
        pytest.param("abcde", 2, id="partial-last-chunk-is-a-token"),
        pytest.param("x" * 4000, 1000, id="long"),
        # é is two bytes, 😀 four: tokens count bytes, not characters.
        pytest.param("é😀a", 2, id="multibyte"),
    ],
)
def test_one_token_per_four_bytes(text: str, tokens: int) -> None:
    assert len(tokenizer.encode(text)) == tokens
    assert tokenizer.count(text) == tokens


def test_ids_are_stable_crc32_values() -> None:
    # Pinned: a change here changes every prefix-cache key a deployed fleet has.
    assert tokenizer.encode("abcde") == (0xED82CD11, 0xEFDA7A5A)


def test_equal_chunks_equal_ids_and_different_chunks_different_ids() -> None:
    a = tokenizer.encode("The quick brown fox jumps")
    b = tokenizer.encode("The quick brown cat jumps")
    assert a[:4] == b[:4]  # "The quick brown " is 16 bytes
    assert a[4] != b[4]


@pytest.mark.parametrize(
    ("messages", "rendered"),
    [
        pytest.param(
            [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}],
            "<|system|>\nBe terse.\n<|user|>\nHi\n<|assistant|>\n",
            id="strings",
        ),
        pytest.param(
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "look"},
                        {"type": "image_url", "image_url": {"url": "x"}},
                        {"type": "text", "text": "here"},
                    ],
                }
            ],
            "<|user|>\nlook\n<|image_url|>\nhere\n<|assistant|>\n",
            id="content-parts",
        ),
        pytest.param(
            [{"role": "assistant", "content": None, "tool_calls": []}],
            "<|assistant|>\n\n<|assistant|>\n",
            id="no-content",
        ),
    ],
)
def test_chat_template(messages: list[dict[str, object]], rendered: str) -> None:
    assert tokenizer.render_chat(messages) == rendered
    assert tokenizer.encode_chat(messages) == tokenizer.encode(rendered)
    assert tokenizer.count_chat(messages) == tokenizer.count(rendered)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(42, id="number"),
        pytest.param(["text"], id="part-not-an-object"),
        pytest.param([{"type": "text", "text": 3}], id="text-not-a-string"),
    ],
)
def test_malformed_content_is_a_value_error(content: object) -> None:
    with pytest.raises(ValueError, match="content"):
        tokenizer.render_chat([{"role": "user", "content": content}])


def test_next_turn_starts_with_every_full_token_of_the_previous_request() -> None:
    turn1 = [{"role": "system", "content": "S" * 301}, {"role": "user", "content": "Q1"}]
    turn2 = [*turn1, {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"}]
    first = tokenizer.encode_chat(turn1)
    full = len(tokenizer.render_chat(turn1).encode()) // tokenizer.BYTES_PER_TOKEN
    assert tokenizer.encode_chat(turn2)[:full] == first[:full]


def _epp_blocks(text: str, block_chars: int) -> list[str]:
    """The EPP's approximate prefix hashes: a chain over fixed-size blocks of the request text."""
    data, chain, parent = text.encode(), [], b"model"
    for start in range(0, len(data) - block_chars + 1, block_chars):
        parent = hashlib.sha256(parent + data[start : start + block_chars]).digest()
        chain.append(parent.hex())
    return chain


def _shared(a: list[str] | tuple[int, ...], b: list[str] | tuple[int, ...]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))


@pytest.mark.parametrize("system_chars", [500, 2000, 8000])
def test_shared_prefix_agrees_with_the_epp_within_one_block(system_chars: int) -> None:
    """Two chats sharing a system prompt: the EPP (JSON of messages, 64-byte blocks for vLLM's
    16-token blocks) and the simulator (rendered chat, 16-token KV blocks) count the same number
    of shared blocks, give or take the framing bytes around one message."""
    system = {"role": "system", "content": "s" * system_chars}
    a = [system, {"role": "user", "content": "What is a KV cache?"}]
    b = [system, {"role": "user", "content": "Explain paged attention."}]
    epp = _shared(_epp_blocks(json.dumps(a), 64), _epp_blocks(json.dumps(b), 64))
    sim_tokens = _shared(tokenizer.encode_chat(a), tokenizer.encode_chat(b))
    assert abs(epp - sim_tokens // 16) <= 1
    assert sim_tokens // 16 >= system_chars // 64 - 1
