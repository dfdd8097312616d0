"""igw.sim.embeddings: deterministic unit vectors from the input's tokens."""

from __future__ import annotations

import base64
import math
import struct

import orjson
import pytest

from igw.sim import embeddings, tokenizer
from igw.sim.openai_requests import decode_embedding
from igw.sim.openai_shapes import ApiError


def respond(body: dict[str, object], max_model_len: int = 100) -> dict[str, object]:
    request, inputs = decode_embedding(orjson.dumps(body))
    raw = embeddings.respond(
        request,
        inputs,
        model="m",
        encode=tokenizer.encode,
        max_model_len=max_model_len,
        default_dims=384,
    )
    answer: dict[str, object] = orjson.loads(raw)
    return answer


def test_vectors_are_unit_length_and_a_function_of_the_tokens() -> None:
    first = embeddings.vector((1, 2, 3), 384)
    assert len(first) == 384
    assert math.isclose(math.fsum(c * c for c in first), 1.0)
    assert embeddings.vector((1, 2, 3), 384) == first
    other = embeddings.vector((1, 2, 4), 384)
    cosine = math.fsum(a * b for a, b in zip(first, other, strict=True))
    assert abs(cosine) < 0.3, "different inputs give unrelated vectors"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"input": "hello world"}, id="text"),
        pytest.param({"input": ["hello world"]}, id="batch-of-one"),
        pytest.param({"input": list(tokenizer.encode("hello world"))}, id="token-ids"),
    ],
)
def test_text_and_its_tokens_embed_alike(body: dict[str, object]) -> None:
    data = respond(body)["data"]
    assert isinstance(data, list)
    assert data[0]["embedding"] == embeddings.vector(tokenizer.encode("hello world"), 384)


def test_a_batch_answers_one_vector_per_input_and_counts_all_tokens() -> None:
    answer = respond({"input": ["a", "bbbbbbbb", [7, 8, 9]], "dimensions": 8})
    data = answer["data"]
    assert isinstance(data, list)
    assert [(item["index"], len(item["embedding"])) for item in data] == [(0, 8), (1, 8), (2, 8)]
    assert answer["usage"] == {"prompt_tokens": 1 + 2 + 3, "total_tokens": 6}


def test_base64_is_little_endian_float32() -> None:
    data = respond({"input": "hi", "encoding_format": "base64", "dimensions": 4})["data"]
    assert isinstance(data, list)
    packed = base64.b64decode(data[0]["embedding"])
    expected = embeddings.vector(tokenizer.encode("hi"), 4)
    assert list(struct.unpack("<4f", packed)) == pytest.approx(expected, rel=1e-6)


def test_an_input_longer_than_the_context_is_refused() -> None:
    with pytest.raises(ApiError) as info:
        respond({"input": "x" * 404}, max_model_len=100)
    assert (info.value.status, info.value.param) == (400, "input_tokens")
