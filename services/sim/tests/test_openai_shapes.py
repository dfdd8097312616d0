"""igw.sim.openai_shapes: every body a pod answers is a valid OpenAI object.

Served by the real engine (the tiny preset). The `openai` package is not a dependency here, so
its response types are mirrored as strict msgspec structs: the fields the package requires, with
its types and `Literal` values (checked against openai 3.57's pydantic models: `ChatCompletion`,
`ChatCompletionChunk`, `Completion`, `CreateEmbeddingResponse`, `Model`, `CompletionUsage`).
Optional fields the package allows are left out, which msgspec ignores; a missing required field
or a wrong type fails the decode. One difference on purpose: a streamed completion chunk's
`finish_reason` may be null, as vLLM sends it mid-stream and the `openai` client accepts it,
although the package's `Completion` type requires a value.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import msgspec
import pytest

from igw.sim import openai_shapes
from igw.sim.engine import Engine, EngineConfig
from igw.sim.server import SimPod
from igw.sim.testing import serve_pod

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class PromptTokensDetails(msgspec.Struct):
    cached_tokens: int | None = None


class CompletionUsage(msgspec.Struct):
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None


class ChatCompletionMessage(msgspec.Struct):
    role: Literal["assistant"]
    content: str | None = None


class ChatChoice(msgspec.Struct):
    finish_reason: FinishReason
    index: int
    message: ChatCompletionMessage
    logprobs: dict[str, Any] | None = None


class ChatCompletion(msgspec.Struct):
    id: str
    choices: list[ChatChoice]
    created: int
    model: str
    object: Literal["chat.completion"]
    usage: CompletionUsage | None = None


class ChoiceDelta(msgspec.Struct):
    content: str | None = None
    role: Literal["developer", "system", "user", "assistant", "tool"] | None = None


class ChunkChoice(msgspec.Struct):
    delta: ChoiceDelta
    index: int
    finish_reason: FinishReason | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(msgspec.Struct):
    id: str
    choices: list[ChunkChoice]
    created: int
    model: str
    object: Literal["chat.completion.chunk"]
    usage: CompletionUsage | None = None


class CompletionChoice(msgspec.Struct):
    finish_reason: Literal["stop", "length", "content_filter"] | None
    index: int
    text: str
    logprobs: dict[str, Any] | None = None


class Completion(msgspec.Struct):
    id: str
    choices: list[CompletionChoice]
    created: int
    model: str
    object: Literal["text_completion"]
    usage: CompletionUsage | None = None


class Embedding(msgspec.Struct):
    embedding: list[float] | str
    index: int
    object: Literal["embedding"]


class EmbeddingUsage(msgspec.Struct):
    prompt_tokens: int
    total_tokens: int


class CreateEmbeddingResponse(msgspec.Struct):
    data: list[Embedding]
    model: str
    object: Literal["list"]
    usage: EmbeddingUsage


class Model(msgspec.Struct):
    id: str
    created: int
    object: Literal["model"]
    owned_by: str
    root: str | None = None
    parent: str | None = None


class ModelList(msgspec.Struct):
    object: Literal["list"]
    data: list[Model]


class ErrorObject(msgspec.Struct):
    message: str
    type: str
    param: str | None
    code: int


class ErrorResponse(msgspec.Struct, forbid_unknown_fields=True):
    error: ErrorObject


CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "Hello there"}]}
COMPLETION = {"model": "fake-model", "prompt": "Once upon a time"}


@pytest.fixture
async def pod() -> AsyncIterator[SimPod]:
    """A pod in front of the real engine (tiny preset, 20x faster than real time)."""
    config = EngineConfig.from_preset("tiny", model_name="fake-model", time_scale=20)
    engine = Engine(config, loras=["sql-lora"])
    async with serve_pod(engine, max_model_len=config.max_model_len) as served:
        yield served


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> bytes:
    async with session.post(url, json=body) as response:
        return await response.read()


def sse_payloads(raw: bytes) -> list[bytes]:
    events = raw.split(b"\n\n")
    assert events[-1] == b"", "the stream ends with a complete event"
    assert all(event.startswith(b"data: ") for event in events[:-1])
    return [event.removeprefix(b"data: ") for event in events[:-1]]


async def test_chat_completion_is_a_chat_completion(
    pod: SimPod, session: aiohttp.ClientSession
) -> None:
    body = {**CHAT, "max_tokens": 5}
    body["messages"] = [{"role": "user", "content": "A prompt of several KV blocks. " * 20}]
    await post(session, f"{pod.url}/v1/chat/completions", body)
    raw = await post(session, f"{pod.url}/v1/chat/completions", body)  # now a prefix hit
    answer = msgspec.json.decode(raw, type=ChatCompletion)
    assert answer.id.startswith("chatcmpl-")
    assert answer.choices[0].message.content == openai_shapes.answer_text(5)
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 5
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 5
    assert answer.usage.prompt_tokens_details is not None
    cached = answer.usage.prompt_tokens_details.cached_tokens
    assert cached is not None
    assert cached % 16 == 0, "whole KV blocks of the tiny preset"
    assert answer.usage.prompt_tokens - 16 <= cached < answer.usage.prompt_tokens


async def test_completion_is_a_completion(pod: SimPod, session: aiohttp.ClientSession) -> None:
    raw = await post(session, f"{pod.url}/v1/completions", COMPLETION)
    answer = msgspec.json.decode(raw, type=Completion)
    assert answer.id.startswith("cmpl-")
    assert answer.choices[0].text == openai_shapes.answer_text(16)  # vLLM's default max_tokens
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 16


@pytest.mark.parametrize(
    "include_usage",
    [pytest.param(True, id="with-usage"), pytest.param(False, id="without-usage")],
)
async def test_chat_stream_chunks_are_chunks(
    pod: SimPod, session: aiohttp.ClientSession, include_usage: bool
) -> None:
    body = {**CHAT, "max_tokens": 3, "stream": True}
    body["stream_options"] = {"include_usage": include_usage}
    payloads = sse_payloads(await post(session, f"{pod.url}/v1/chat/completions", body))
    assert payloads[-1] == b"[DONE]"
    chunks = [msgspec.json.decode(p, type=ChatCompletionChunk) for p in payloads[:-1]]
    assert len({chunk.id for chunk in chunks}) == 1, "every chunk names the same completion"
    assert chunks[0].choices[0].delta == ChoiceDelta(content="", role="assistant")
    tokens = chunks[1:4]
    assert [c.choices[0].delta.content for c in tokens] == [
        openai_shapes.token_text(i) for i in range(3)
    ]
    assert [c.choices[0].finish_reason for c in tokens] == [None, None, "length"]
    if include_usage:
        assert len(chunks) == 5
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 3
    else:
        assert len(chunks) == 4


async def test_completion_stream_chunks_are_completions(
    pod: SimPod, session: aiohttp.ClientSession
) -> None:
    body = {**COMPLETION, "max_tokens": 2, "stream": True}
    payloads = sse_payloads(await post(session, f"{pod.url}/v1/completions", body))
    assert payloads[-1] == b"[DONE]"
    chunks = [msgspec.json.decode(p, type=Completion) for p in payloads[:-1]]
    assert [c.choices[0].text for c in chunks] == [openai_shapes.token_text(i) for i in range(2)]
    assert [c.choices[0].finish_reason for c in chunks] == [None, "length"]


@pytest.mark.parametrize(
    "encoding",
    [pytest.param("float", id="float"), pytest.param("base64", id="base64")],
)
async def test_embeddings_are_embeddings(
    pod: SimPod, session: aiohttp.ClientSession, encoding: str
) -> None:
    body = {"model": "fake-model", "input": ["alpha", "beta"], "encoding_format": encoding}
    raw = await post(session, f"{pod.url}/v1/embeddings", body)
    answer = msgspec.json.decode(raw, type=CreateEmbeddingResponse)
    assert [item.index for item in answer.data] == [0, 1]
    vector = answer.data[0].embedding
    if encoding == "base64":
        assert isinstance(vector, str)
        packed = base64.b64decode(vector)
        vector = list(struct.unpack(f"<{len(packed) // 4}f", packed))
    assert len(vector) == 384
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > 0


async def test_models_are_models(pod: SimPod, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{pod.url}/v1/models") as response:
        models = msgspec.json.decode(await response.read(), type=ModelList)
    assert [(m.id, m.parent) for m in models.data] == [
        ("fake-model", None),
        ("sql-lora", "fake-model"),
    ]


@pytest.mark.parametrize(
    ("path", "body", "status", "error_type"),
    [
        pytest.param("/v1/chat/completions", {"messages": []}, 400, "BadRequestError", id="400"),
        pytest.param(
            "/v1/completions", {**COMPLETION, "model": "nope"}, 404, "NotFoundError", id="404"
        ),
    ],
)
async def test_errors_are_openai_errors(
    pod: SimPod, path: str, body: dict[str, Any], status: int, error_type: str
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{pod.url}{path}", json=body) as response,
    ):
        assert response.status == status
        assert response.content_type == "application/json"
        error = msgspec.json.decode(await response.read(), type=ErrorResponse).error
    assert (error.code, error.type) == (status, error_type)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(400, "BadRequestError", id="400"),
        pytest.param(401, "AuthenticationError", id="401"),
        pytest.param(404, "NotFoundError", id="404"),
        pytest.param(429, "RateLimitError", id="429"),
        pytest.param(503, "InternalServerError", id="5xx"),
        pytest.param(418, "APIError", id="other"),
    ],
)
def test_error_types_are_the_openai_exception_names(status: int, expected: str) -> None:
    assert openai_shapes.error_type(status) == expected


def test_token_text_cycles_through_the_filler_words() -> None:
    words = [openai_shapes.token_text(i) for i in range(100)]
    assert all(word.endswith(" ") and word.strip() for word in words)
    assert openai_shapes.answer_text(3) == "".join(words[:3])
    assert len(set(words)) > 10
