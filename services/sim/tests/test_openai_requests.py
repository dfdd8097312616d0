"""igw.sim.openai_requests: typed decoding, vLLM-style checks, prompts and messages."""

from __future__ import annotations

import orjson
import pytest

from igw.sim.openai_requests import (
    ChatMessage,
    ContentPart,
    decode_chat,
    decode_completion,
    decode_embedding,
    decode_lora_load,
    message_dicts,
)
from igw.sim.openai_shapes import ApiError

MESSAGES = [{"role": "user", "content": "hi"}]


def chat(**fields: object) -> bytes:
    return orjson.dumps({"messages": MESSAGES, **fields})


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        pytest.param(chat(max_tokens="3"), "max_tokens", "Expected `int | null`", id="type"),
        pytest.param(chat(messages=[{"role": 1}]), "messages", "`$.messages[0].role`", id="nested"),
        pytest.param(b"[]", None, "Expected `object`", id="not-an-object"),
        pytest.param(b"{", None, "not valid JSON", id="truncated"),
        pytest.param(chat(max_tokens=0), "max_tokens", "at least 1, got 0", id="max-tokens"),
        pytest.param(chat(n=3), "n", "n=1 only", id="n"),
        pytest.param(
            chat(messages=[{"role": "user", "content": [{"type": "text"}]}]),
            "messages",
            "needs its text",
            id="text-part-without-text",
        ),
    ],
)
def test_chat_errors_name_the_field(body: bytes, param: str | None, message: str) -> None:
    with pytest.raises(ApiError) as info:
        decode_chat(body)
    assert (info.value.status, info.value.param) == (400, param)
    assert message in info.value.message


def test_sampling_fields_are_accepted_and_ignored() -> None:
    request = decode_chat(chat(temperature=0.2, top_p=0.9, ignore_eos=True, min_tokens=4))
    assert (request.ignore_eos, request.min_tokens) == (True, 4)


def test_max_completion_tokens_is_checked_like_max_tokens() -> None:
    with pytest.raises(ApiError, match="max_completion_tokens must be at least 1"):
        decode_chat(chat(max_completion_tokens=0))


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        pytest.param("hello", "hello", id="text"),
        pytest.param(["hello"], "hello", id="batch-of-one-text"),
        pytest.param([1, 2, 3], (1, 2, 3), id="token-ids"),
        pytest.param([[1, 2]], (1, 2), id="batch-of-one-token-list"),
    ],
)
def test_completion_prompts(prompt: object, expected: object) -> None:
    _, decoded = decode_completion(orjson.dumps({"prompt": prompt}))
    assert decoded == expected


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("", id="empty-text"),
        pytest.param([], id="empty-list"),
        pytest.param(["a", "b"], id="two-prompts"),
        pytest.param([[1], [2]], id="two-token-lists"),
        pytest.param([1, -2], id="negative-id"),
        pytest.param([True, 1], id="booleans-are-not-ids"),
        pytest.param([1.5], id="float-id"),
    ],
)
def test_unusable_completion_prompts(prompt: object) -> None:
    with pytest.raises(ApiError) as info:
        decode_completion(orjson.dumps({"prompt": prompt}))
    assert (info.value.status, info.value.param) == (400, "prompt")


def test_embedding_inputs_may_be_batched() -> None:
    _, inputs = decode_embedding(orjson.dumps({"input": ["a", [1, 2], "b"]}))
    assert inputs == ["a", (1, 2), "b"]
    with pytest.raises(ApiError, match="dimensions"):
        decode_embedding(orjson.dumps({"input": "a", "dimensions": 0}))


def test_messages_become_the_mappings_the_tokenizer_renders() -> None:
    messages = [
        ChatMessage("system", "be brief"),
        ChatMessage("user", [ContentPart("text", "look"), ContentPart("image_url")]),
        ChatMessage("assistant", None),
    ]
    assert message_dicts(messages) == [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "look"}, {"type": "image_url", "text": ""}],
        },
        {"role": "assistant", "content": None},
    ]


def test_lora_bodies_decode_with_optional_fields() -> None:
    request = decode_lora_load(b'{"lora_name": "a", "lora_path": "/p", "load_inplace": true}')
    assert (request.lora_name, request.lora_path) == ("a", "/p")
