"""igw.common.openai: API type from the path, and partial decoding of request bodies."""

from __future__ import annotations

import msgspec
import pytest

from igw.common.errors import BadRequestError
from igw.common.openai import (
    ApiType,
    FieldDecoder,
    api_type_for_path,
    first_text,
    is_empty,
    raw_as_text,
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/v1/chat/completions", ApiType.CHAT_COMPLETIONS, id="chat"),
        pytest.param("/v1/completions", ApiType.COMPLETIONS, id="completions"),
        pytest.param("/v1/embeddings", ApiType.EMBEDDINGS, id="embeddings"),
        pytest.param("/v1/responses", ApiType.RESPONSES, id="responses"),
        pytest.param("/v1/conversations", ApiType.CONVERSATIONS, id="conversations"),
        pytest.param(
            "/v1/projects/p/locations/l/endpoints/e/chat/completions",
            ApiType.CHAT_COMPLETIONS,
            id="vertex-provider-path",
        ),
        pytest.param("/openai/deployments/d/embeddings", ApiType.EMBEDDINGS, id="azure-path"),
        pytest.param("/v1/chat/completions?api-version=2024", ApiType.CHAT_COMPLETIONS, id="query"),
        pytest.param("/v1/embeddings/?x=/chat/completions", ApiType.EMBEDDINGS, id="query-slash"),
        pytest.param("/v1/chat/completions/", ApiType.CHAT_COMPLETIONS, id="trailing-slash"),
        # Anything else is parsed as completions, as upstream does.
        pytest.param("/v1/models", ApiType.COMPLETIONS, id="unknown"),
        pytest.param("", ApiType.COMPLETIONS, id="no-path"),
        pytest.param("/v1/chat", ApiType.COMPLETIONS, id="partial-suffix"),
    ],
)
def test_api_type_for_path(path: str, expected: ApiType) -> None:
    assert api_type_for_path(path) is expected


MODEL_AND_STREAM = FieldDecoder(["model", "stream"])


def texts(body: bytes | memoryview, decoder: FieldDecoder = MODEL_AND_STREAM) -> dict[str, str]:
    return {name: raw_as_text(raw) for name, raw in decoder.decode(body).items()}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            b'{"model":"llama","stream":true}', {"model": "llama", "stream": "true"}, id="both"
        ),
        pytest.param(
            b'{"messages":[{"role":"user","content":"hi"}],"model":"m","max_tokens":5}',
            {"model": "m"},
            id="others-skipped",
        ),
        pytest.param(b'{"model":null,"stream":false}', {"stream": "false"}, id="null-is-absent"),
        pytest.param(b"{}", {}, id="empty-object"),
        pytest.param(b'{"model":"\\u00e9t\\u00e9"}', {"model": "été"}, id="unicode-escape"),
        pytest.param('{"model":"été"}'.encode(), {"model": "été"}, id="utf8"),
        pytest.param(b'{"model":"a\\"b"}', {"model": 'a"b'}, id="escaped-quote"),
        pytest.param(rb'{"model":"\ud83d\ude00"}', {"model": "\U0001f600"}, id="surrogate-pair"),
        # Invalid UTF-8 is replaced, as upstream's Go decoding does, rather than failing the stream.
        pytest.param(b'{"model":"a\xffb"}', {"model": "a\ufffdb"}, id="invalid-utf8"),
        pytest.param(b'{"model":["\xff"]}', {"model": '["\ufffd"]'}, id="invalid-utf8-array"),
        pytest.param(b'{"model": 7}', {"model": "7"}, id="int"),
        pytest.param(b'{"model": -1.5e3}', {"model": "-1.5e3"}, id="float-as-written"),
        pytest.param(b'{"model": {"a": [1, 2]}}', {"model": '{"a":[1,2]}'}, id="object-compact"),
        # A header value cannot hold the newlines of a pretty-printed body.
        pytest.param(
            b'{\n  "model": {\n    "name": "x y"\n  }\n}',
            {"model": '{"name":"x y"}'},
            id="pretty-printed-object",
        ),
        pytest.param(b'{"model":"a","model":"b"}', {"model": "b"}, id="duplicate-last-wins"),
    ],
)
def test_decode_wanted_fields_as_header_text(body: bytes, expected: dict[str, str]) -> None:
    assert texts(body) == expected


def test_decode_accepts_memoryview() -> None:
    assert texts(memoryview(b'{"model":"m"}')) == {"model": "m"}


def test_field_names_need_not_be_identifiers() -> None:
    decoder = FieldDecoder(["x-tenant", "class", "0"])

    assert texts(b'{"x-tenant":"t","class":"c","0":1}', decoder) == {
        "x-tenant": "t",
        "class": "c",
        "0": "1",
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            b"[1]", "the body must be a JSON object, expected `object`, got `array`", id="array"
        ),
        pytest.param(b'"s"', "the body must be a JSON object", id="string"),
        pytest.param(b"null", "the body must be a JSON object", id="null"),
        pytest.param(b"{", "truncated", id="truncated"),
        pytest.param(b"", "truncated", id="empty"),
        pytest.param(b'{"model":"m"} trailing', "trailing characters", id="trailing-garbage"),
        pytest.param(b'{"model":"m"}{}', "trailing characters", id="two-objects"),
        # Skipped values are still checked for well-formedness.
        pytest.param(b'{"messages":[1,],"model":"m"}', "malformed", id="bad-skipped-value"),
        pytest.param(b"{'model':'m'}", "malformed", id="single-quotes"),
        # A lone surrogate cannot be text; msgspec's wording for it varies, the 400 is what counts.
        pytest.param(rb'{"model":"\ud800"}', "", id="lone-surrogate-escape"),
        # Found by bench.fuzz_extproc: msgspec raised RecursionError, the stream ended INTERNAL.
        pytest.param(
            b'{"model":"m","prompt":' + b"[" * 5000 + b"]" * 5000 + b"}",
            "nested too deeply",
            id="deep-nesting",
        ),
    ],
)
def test_decode_rejects_what_is_not_one_json_object(body: bytes, message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        MODEL_AND_STREAM.decode(body)

    assert caught.value.status == 400
    assert caught.value.message.startswith("failed to parse request body: ")
    assert message.lower() in caught.value.message.lower()


@pytest.mark.parametrize(
    ("raw", "empty"),
    [
        pytest.param(b'""', True, id="empty-string"),
        pytest.param(b"[]", True, id="empty-array"),
        pytest.param(b"{}", True, id="empty-object"),
        pytest.param(b"[ \n ]", True, id="empty-array-spaced"),
        pytest.param(b"{ }", True, id="empty-object-spaced"),
        pytest.param(b'" "', False, id="space-string"),
        pytest.param(b"0", False, id="zero"),
        pytest.param(b"false", False, id="false"),
        pytest.param(b"[[]]", False, id="nested-empty"),
    ],
)
def test_is_empty(raw: bytes, empty: bool) -> None:
    assert is_empty(msgspec.Raw(raw)) is empty


def test_first_text() -> None:
    fields = MODEL_AND_STREAM.decode(b'{"model":"m"}')

    assert first_text(fields, "model") == "m"
    assert first_text(fields, "stream") is None


def test_decoder_lists_its_fields_sorted_once() -> None:
    assert FieldDecoder(["stream", "model", "stream"]).fields == ("model", "stream")
