"""`openai-parser`: OpenAI-style request bodies, read once, only the fields the EPP uses (§1.7).

One msgspec pass per body, with a struct per API type (from the path suffix, as upstream: unknown
suffixes are completions, quirk #5 kept). Every field is kept as raw JSON bytes (`msgspec.Raw`,
a view into the body, no copy), so a 220 KB prompt is scanned once and never decoded into
Python objects, except chat `messages`, whose shape is checked by a second typed pass (roles and
content are validated, texts stay unread).

Errors, with upstream's texts (§1.10), all 400:

* not one JSON object -> `error unmarshaling request bodyMap: <decoder error>`;
* wrong shape for the API type -> `invalid chat completions request: must have valid messages
  field`, `invalid completions request: must have prompt field`, `invalid responses request: must
  have input field`, `invalid conversations request: must have items field`, `invalid embeddings
  request: must have input field`;
* `model` absent or not a string -> `model not found in request body` (checked after the shape).

The body is never re-serialised (upstream re-marshals every body, quirk #3): only a model rewrite
changes it, by splicing the new value over the old one's bytes (`rewrite_model`).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Final

import msgspec
import orjson

from igw.common.errors import BadRequestError, InternalError
from igw.common.openai import ApiType, api_type_for_path
from igw.epp.framework.params import ParameterlessPlugin
from igw.epp.framework.parsing import ParsedRequest
from igw.epp.parsers._usage import OpenAIUsageReader

__all__ = ["OpenAIParser"]

_ABSENT: Final = msgspec.Raw(b"")
_STR: Final = msgspec.json.Decoder(str)
_MODEL_KEY: Final = re.compile(rb'"model"\s*:\s*')


class _Common(msgspec.Struct):
    model: msgspec.Raw = _ABSENT
    stream: msgspec.Raw = _ABSENT
    cache_salt: msgspec.Raw = _ABSENT


class _Chat(_Common):
    messages: msgspec.Raw = _ABSENT


class _Completions(_Common):
    prompt: msgspec.Raw = _ABSENT


class _Responses(_Common):
    input: msgspec.Raw = _ABSENT
    instructions: msgspec.Raw = _ABSENT
    tools: msgspec.Raw = _ABSENT


class _Conversations(_Common):
    items: msgspec.Raw = _ABSENT


class _Embeddings(_Common):
    input: msgspec.Raw = _ABSENT


class _Block(msgspec.Struct):
    type: str


class _Message(msgspec.Struct):
    role: str
    content: str | list[_Block] | None = None


_DECODERS: Final[dict[ApiType, msgspec.json.Decoder[Any]]] = {
    ApiType.CHAT_COMPLETIONS: msgspec.json.Decoder(_Chat),
    ApiType.COMPLETIONS: msgspec.json.Decoder(_Completions),
    ApiType.RESPONSES: msgspec.json.Decoder(_Responses),
    ApiType.CONVERSATIONS: msgspec.json.Decoder(_Conversations),
    ApiType.EMBEDDINGS: msgspec.json.Decoder(_Embeddings),
}
_MESSAGES: Final = msgspec.json.Decoder(list[_Message])
_PROMPT_STRINGS: Final = msgspec.json.Decoder(list[str])


def _text(raw: msgspec.Raw) -> str:
    return bytes(raw).decode("utf-8", "replace")


def _non_empty(raw: msgspec.Raw, *, arrays_only: bool = False) -> bool:
    """A present string or array with something in it (`""`, `[]`, `[ ]` are empty)."""
    data = memoryview(raw)
    head = bytes(data[:1])
    if head == b"[":
        return bytes(data[1:16]).lstrip()[:1] != b"]"
    return not arrays_only and head == b'"' and len(data) > 2


def _chat_text(body: _Chat) -> str:
    raw = body.messages
    if not _non_empty(raw, arrays_only=True):
        raise BadRequestError("invalid chat completions request: must have valid messages field")
    try:
        _MESSAGES.decode(raw)
    except msgspec.MsgspecError:
        raise BadRequestError(
            "invalid chat completions request: must have valid messages field"
        ) from None
    return _text(raw)


def _completions_text(body: _Completions) -> str:
    raw = body.prompt
    if not _non_empty(raw):
        raise BadRequestError("invalid completions request: must have prompt field")
    if bytes(memoryview(raw)[:1]) == b'"':
        return _STR.decode(raw)
    try:
        return " ".join(_PROMPT_STRINGS.decode(raw))
    except msgspec.MsgspecError:
        return _text(raw)  # token ids: their JSON text still identifies the prefix


def _responses_text(body: _Responses) -> str:
    if not body.input or bytes(body.input) == b"null":
        raise BadRequestError("invalid responses request: must have input field")
    parts = [
        b'{"%s":%s}' % (name, bytes(raw))
        for name, raw in ((b"instructions", body.instructions), (b"tools", body.tools))
        if raw and bytes(raw) != b"null"
    ]
    parts.append(b'{"input":%s}' % bytes(body.input))
    return (b"[" + b",".join(parts) + b"]").decode("utf-8", "replace")


def _conversations_text(body: _Conversations) -> str:
    if not _non_empty(body.items, arrays_only=True):
        raise BadRequestError("invalid conversations request: must have items field")
    return _text(body.items)


def _embeddings_text(body: _Embeddings) -> str:
    if not _non_empty(body.input):
        raise BadRequestError("invalid embeddings request: must have input field")
    return _text(body.input)


_PROMPT_TEXT: Final[dict[ApiType, Any]] = {
    ApiType.CHAT_COMPLETIONS: _chat_text,
    ApiType.COMPLETIONS: _completions_text,
    ApiType.RESPONSES: _responses_text,
    ApiType.CONVERSATIONS: _conversations_text,
    ApiType.EMBEDDINGS: _embeddings_text,
}


class OpenAIParser(ParameterlessPlugin):
    """The default parser; stateless, shared by every request."""

    type_name: ClassVar[str] = "openai-parser"
    reads_models: ClassVar[bool] = True

    def parse(self, path: str, body: bytes) -> ParsedRequest:
        """The request's fields; a body that is not usable JSON is a `BadRequestError` (400).

        msgspec checks a string's UTF-8 only when the string is decoded, and recursion depth
        only when a nested value is, both past the first decode: those errors are the body's
        fault too, not the parser's (found by the ext_proc fuzzer)."""
        try:
            return self._parse(path, body)
        except UnicodeDecodeError:
            raise BadRequestError("error unmarshaling request bodyMap: invalid UTF-8") from None
        except RecursionError:
            raise BadRequestError(
                "error unmarshaling request bodyMap: JSON nested too deeply"
            ) from None

    def _parse(self, path: str, body: bytes) -> ParsedRequest:
        api_type = api_type_for_path(path)
        try:
            decoded = _DECODERS[api_type].decode(body)
        except msgspec.MsgspecError as e:
            raise BadRequestError(f"error unmarshaling request bodyMap: {e}") from None
        prompt_text: str = _PROMPT_TEXT[api_type](decoded)
        model_raw = bytes(decoded.model)
        if model_raw[:1] != b'"':
            raise BadRequestError("model not found in request body")
        salt = bytes(decoded.cache_salt)
        return ParsedRequest(
            model=_STR.decode(model_raw),
            api_type=api_type,
            stream=bytes(decoded.stream) == b"true",
            cache_salt=_STR.decode(salt) if salt[:1] == b'"' else "",
            prompt_text=prompt_text,
            model_raw=model_raw,
        )

    def rewrite_model(self, body: bytes, parsed: ParsedRequest, target: str) -> bytes:
        """Splices `target` over the top-level `model` value, leaving every other byte alone.

        The splice needs the one `"model": <old value>` in the body; when the same key and value
        also appear nested (so the top-level one is ambiguous), the body is decoded and
        re-encoded with orjson instead (key order kept, whitespace dropped).
        """
        new_value = orjson.dumps(target)
        old = parsed.model_raw
        spans = [m.end() for m in _MODEL_KEY.finditer(body) if body.startswith(old, m.end())]
        if len(spans) == 1:
            start = spans[0]
            return b"".join((body[:start], new_value, body[start + len(old) :]))
        try:
            document = orjson.loads(body)
            document["model"] = target
            return orjson.dumps(document)
        except (orjson.JSONDecodeError, orjson.JSONEncodeError, TypeError):
            raise InternalError("Error marshalling request body") from None

    def usage_reader(self) -> OpenAIUsageReader:
        return OpenAIUsageReader()
