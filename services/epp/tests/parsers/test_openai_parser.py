"""openai-parser: API types by path, upstream's validation messages, prompt text, model splice."""

import msgspec
import orjson
import pytest

from igw.common.errors import BadRequestError, InternalError
from igw.common.openai import ApiType
from igw.epp.config import builtin_registry
from igw.epp.framework import PluginHandle
from igw.epp.framework.parsing import ParsedRequest
from igw.epp.parsers import OpenAIParser, PassthroughParser

PARSER = OpenAIParser()
CHAT = "/v1/chat/completions"
MSGS = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("path", "body", "api_type", "prompt"),
    [
        pytest.param(CHAT, {"model": "m", "messages": MSGS}, ApiType.CHAT_COMPLETIONS,
                     '[{"role":"user","content":"hi"}]', id="chat-json-of-messages"),
        pytest.param("/v1/completions", {"model": "m", "prompt": "once upon"},
                     ApiType.COMPLETIONS, "once upon", id="completions-string"),
        pytest.param("/v1/completions", {"model": "m", "prompt": ["a", "b"]},
                     ApiType.COMPLETIONS, "a b", id="completions-strings-joined-by-space"),
        pytest.param("/v1/completions", {"model": "m", "prompt": [1, 2]},
                     ApiType.COMPLETIONS, "[1,2]", id="completions-token-ids"),
        pytest.param("/v1/responses", {"model": "m", "input": "x", "instructions": "be"},
                     ApiType.RESPONSES, '[{"instructions":"be"},{"input":"x"}]', id="responses"),
        pytest.param("/v1/conversations", {"model": "m", "items": [{"a": 1}]},
                     ApiType.CONVERSATIONS, '[{"a":1}]', id="conversations"),
        pytest.param("/v1/embeddings", {"model": "m", "input": "text"},
                     ApiType.EMBEDDINGS, '"text"', id="embeddings"),
        pytest.param("/v1/projects/p/locations/l/chat/completions?x=1",
                     {"model": "m", "messages": MSGS}, ApiType.CHAT_COMPLETIONS,
                     '[{"role":"user","content":"hi"}]', id="provider-path-suffix"),
        pytest.param("/unknown", {"model": "m", "prompt": "p"}, ApiType.COMPLETIONS, "p",
                     id="unknown-path-is-completions"),
    ],
)  # fmt: skip
def test_api_types_and_prompt_text(
    path: str, body: dict[str, object], api_type: ApiType, prompt: str
) -> None:
    parsed = PARSER.parse(path, orjson.dumps(body))
    assert parsed.api_type is api_type
    assert parsed.model == "m"
    assert parsed.prompt_text == prompt


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        pytest.param(CHAT, b"not json", "error unmarshaling request bodyMap: ", id="not-json"),
        pytest.param(CHAT, b"[1,2]", "error unmarshaling request bodyMap: ", id="array"),
        pytest.param(CHAT, b"", "error unmarshaling request bodyMap: ", id="empty"),
        pytest.param(CHAT, b'{"model":"m"}',
                     "invalid chat completions request: must have valid messages field",
                     id="chat-no-messages"),
        pytest.param(CHAT, b'{"model":"m","messages":[]}',
                     "invalid chat completions request: must have valid messages field",
                     id="chat-empty-messages"),
        pytest.param(CHAT, b'{"model":"m","messages":[{"role":1,"content":"x"}]}',
                     "invalid chat completions request: must have valid messages field",
                     id="chat-role-not-string"),
        pytest.param(CHAT, b'{"model":"m","messages":"hi"}',
                     "invalid chat completions request: must have valid messages field",
                     id="chat-messages-string"),
        pytest.param("/v1/completions", b'{"model":"m","prompt":""}',
                     "invalid completions request: must have prompt field", id="empty-prompt"),
        pytest.param("/v1/responses", b'{"model":"m"}',
                     "invalid responses request: must have input field", id="responses-no-input"),
        pytest.param("/v1/conversations", b'{"model":"m","items":[]}',
                     "invalid conversations request: must have items field", id="conv-empty"),
        pytest.param("/v1/embeddings", b'{"model":"m","input":[]}',
                     "invalid embeddings request: must have input field", id="embeddings-empty"),
        pytest.param(CHAT, b'{"messages":[{"role":"user","content":"x"}]}',
                     "model not found in request body", id="no-model"),
        pytest.param(CHAT, b'{"model":7,"messages":[{"role":"user","content":"x"}]}',
                     "model not found in request body", id="model-not-string"),
        pytest.param(CHAT, b'{"model":null,"messages":[{"role":"user","content":"x"}]}',
                     "model not found in request body", id="model-null"),
        # Found by the ext_proc fuzzer (bench.fuzz_extproc): once unexpected exceptions (500).
        pytest.param(CHAT, b'{"model":"m\x80\x80","messages":[{"role":"user","content":"x"}]}',
                     "error unmarshaling request bodyMap: invalid UTF-8", id="model-bad-utf8"),
        pytest.param(CHAT, b'{"model":"m","messages":[{"role":"user","content":"\xff"}]}',
                     "error unmarshaling request bodyMap: invalid UTF-8", id="content-bad-utf8"),
        pytest.param("/v1/completions", b'{"model":"m","prompt":"\xc3("}',
                     "error unmarshaling request bodyMap: invalid UTF-8", id="prompt-bad-utf8"),
        pytest.param("/v1/completions", b'{"model":"m","prompt":%s}' % (b"[" * 5000 + b"]" * 5000),
                     "error unmarshaling request bodyMap: JSON nested too deeply", id="deep"),
    ],
)  # fmt: skip
def test_bad_requests(path: str, body: bytes, message: str) -> None:
    with pytest.raises(BadRequestError) as info:
        PARSER.parse(path, body)
    assert info.value.status == 400
    assert info.value.message.startswith(message)


@pytest.mark.parametrize(
    ("body", "stream", "salt"),
    [
        pytest.param({"stream": True, "cache_salt": "s"}, True, "s", id="stream-and-salt"),
        pytest.param({"stream": "true"}, False, "", id="stream-must-be-boolean"),
        pytest.param({"cache_salt": 3}, False, "", id="salt-not-string-ignored"),
    ],
)
def test_stream_flag_and_cache_salt(body: dict[str, object], stream: bool, salt: str) -> None:
    parsed = PARSER.parse(CHAT, orjson.dumps({"model": "m", "messages": MSGS, **body}))
    assert (parsed.stream, parsed.cache_salt) == (stream, salt)


def test_rewrite_splices_the_model_keeping_every_other_byte() -> None:
    body = b'{ "messages" : [{"role":"user","content":"model"}],\n  "model" :  "a\\"b", "z": 1 }'
    parsed = PARSER.parse(CHAT, body)
    assert parsed.model == 'a"b'
    out = PARSER.rewrite_model(body, parsed, "target")
    assert out == body.replace(b'"a\\"b"', b'"target"')


def test_rewrite_falls_back_to_reencoding_when_the_model_is_ambiguous() -> None:
    body = b'{"metadata":{"model":"m"},"model":"m","messages":[{"role":"u","content":"x"}]}'
    out = PARSER.rewrite_model(body, PARSER.parse(CHAT, body), "t")
    assert orjson.loads(out) == {**orjson.loads(body), "model": "t"}


def test_rewrite_of_unparseable_body_is_internal_error() -> None:
    parsed = ParsedRequest(model="m", model_raw=b'"m"')
    with pytest.raises(InternalError, match="Error marshalling request body"):
        PARSER.rewrite_model(b'{"model":"m","model":"m"', parsed, "t")


def test_passthrough_reads_nothing_and_changes_nothing() -> None:
    parser = PassthroughParser()
    assert parser.parse(CHAT, b"\x00 not json").model == ""
    assert parser.rewrite_model(b"body", parser.parse(CHAT, b""), "t") == b"body"
    assert parser.usage_reader().feed(b'{"usage":{}}', end_of_stream=True, streaming=False) is None


@pytest.mark.parametrize(
    ("type_name", "expected"),
    [
        pytest.param("openai-parser", OpenAIParser, id="openai"),
        pytest.param("passthrough-parser", PassthroughParser, id="passthrough"),
    ],
)
def test_parsers_are_built_through_the_registry(type_name: str, expected: type) -> None:
    parser = builtin_registry(entry_points=False).create(type_name, "p", {}, PluginHandle())
    assert isinstance(parser, expected)
    assert parser.name == "p"


def test_a_parser_refuses_parameters() -> None:
    registry = builtin_registry(entry_points=False)
    with pytest.raises(msgspec.ValidationError, match="unknown field `x`"):
        registry.create("openai-parser", "p", {"x": 1}, PluginHandle())
