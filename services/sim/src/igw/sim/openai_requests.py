"""Decoding and validating OpenAI request bodies with msgspec structs.

msgspec checks types while decoding, so a wrong type is a 400 naming the field
(`Expected int | null, got str - at $.max_tokens`); the checks msgspec cannot express (a
non-empty prompt, `max_tokens >= 1`) follow in `decode_*`. Unknown fields are accepted and
ignored, as vLLM does, so sampling parameters (`temperature`, `top_p`, `seed`...) pass through;
`ignore_eos` and `min_tokens` are typed, so a client that sends them gets its types checked.

Prompts: a completion prompt is a string or a list of token ids, or a list holding exactly one of
those (igw-sim answers one choice per request, so batched prompts and `n > 1` are refused).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal, TypeVar

import msgspec

from igw.sim.openai_shapes import ApiError

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "CompletionRequest",
    "ContentPart",
    "EmbeddingRequest",
    "LoraLoadRequest",
    "LoraUnloadRequest",
    "StreamOptions",
    "decode_chat",
    "decode_completion",
    "decode_embedding",
    "decode_lora_load",
    "decode_lora_unload",
    "message_dicts",
]


class ContentPart(msgspec.Struct, frozen=True):
    type: str
    text: str | None = None


class ChatMessage(msgspec.Struct, frozen=True):
    role: str
    content: str | list[ContentPart] | None = None


class StreamOptions(msgspec.Struct, frozen=True):
    include_usage: bool | None = False
    continuous_usage_stats: bool | None = False


class _Generation(msgspec.Struct, frozen=True, kw_only=True):
    model: str | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    n: int | None = 1
    ignore_eos: bool | None = False
    min_tokens: int | None = 0


class ChatRequest(_Generation, frozen=True, kw_only=True):
    messages: list[ChatMessage]
    max_completion_tokens: int | None = None


class CompletionRequest(_Generation, frozen=True, kw_only=True):
    prompt: str | list[Any]


class EmbeddingRequest(msgspec.Struct, frozen=True, kw_only=True):
    input: str | list[Any]
    model: str | None = None
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: int | None = None


class LoraLoadRequest(msgspec.Struct, frozen=True, kw_only=True):
    lora_name: str | None = None
    lora_path: str | None = None


class LoraUnloadRequest(msgspec.Struct, frozen=True, kw_only=True):
    lora_name: str | None = None


_T = TypeVar("_T")

_DECODERS: Final[dict[type[Any], msgspec.json.Decoder[Any]]] = {
    cls: msgspec.json.Decoder(cls)
    for cls in (
        ChatRequest,
        CompletionRequest,
        EmbeddingRequest,
        LoraLoadRequest,
        LoraUnloadRequest,
    )
}


def _decode(cls: type[_T], body: bytes) -> _T:
    try:
        decoded: _T = _DECODERS[cls].decode(body)
    except msgspec.ValidationError as e:
        raise ApiError(400, f"invalid request: {e}", param=_param_of(str(e))) from None
    except msgspec.DecodeError as e:
        raise ApiError(400, f"the request body is not valid JSON: {e}") from None
    return decoded


def _param_of(message: str) -> str | None:
    """The top-level field a msgspec error points at (`... - at $.messages[0].role`)."""
    _, sep, path = message.rpartition(" - at `$.")
    if not sep:
        return None
    return path.rstrip("`").split(".", 1)[0].split("[", 1)[0] or None


def _check_common(request: _Generation) -> None:
    if request.max_tokens is not None and request.max_tokens < 1:
        raise ApiError(
            400, f"max_tokens must be at least 1, got {request.max_tokens}.", param="max_tokens"
        )
    if request.n not in (None, 1):
        raise ApiError(400, f"igw-sim answers n=1 only, got n={request.n}.", param="n")


def decode_chat(body: bytes) -> ChatRequest:
    request = _decode(ChatRequest, body)
    if not request.messages:
        raise ApiError(400, "messages must hold at least one message.", param="messages")
    if request.max_completion_tokens is not None and request.max_completion_tokens < 1:
        raise ApiError(
            400,
            f"max_completion_tokens must be at least 1, got {request.max_completion_tokens}.",
            param="max_completion_tokens",
        )
    _check_common(request)
    for message in request.messages:
        if isinstance(message.content, list) and any(
            part.type == "text" and part.text is None for part in message.content
        ):
            raise ApiError(400, "a text content part needs its text.", param="messages")
    return request


def message_dicts(messages: Sequence[ChatMessage]) -> list[dict[str, object]]:
    """Messages as the plain mappings `igw.sim.tokenizer.render_chat` renders."""
    return [{"role": m.role, "content": _content(m.content)} for m in messages]


def _content(content: str | list[ContentPart] | None) -> str | list[dict[str, str]] | None:
    if not isinstance(content, list):
        return content
    return [{"type": part.type, "text": part.text or ""} for part in content]


def decode_completion(body: bytes) -> tuple[CompletionRequest, str | tuple[int, ...]]:
    """The request and its one prompt: text, or token ids as the client sent them."""
    request = _decode(CompletionRequest, body)
    _check_common(request)
    return request, _single_prompt(request.prompt, "prompt")


def decode_embedding(body: bytes) -> tuple[EmbeddingRequest, list[str | tuple[int, ...]]]:
    """The request and its inputs, each text or token ids (a batch gives several)."""
    request = _decode(EmbeddingRequest, body)
    if request.dimensions is not None and request.dimensions < 1:
        raise ApiError(400, "dimensions must be at least 1.", param="dimensions")
    raw = request.input
    if isinstance(raw, str) or _is_token_list(raw):
        return request, [_single_prompt(raw, "input")]
    if not raw:
        raise ApiError(400, "input must not be empty.", param="input")
    return request, [_single_prompt(item, "input") for item in raw]


def decode_lora_load(body: bytes) -> LoraLoadRequest:
    return _decode(LoraLoadRequest, body)


def decode_lora_unload(body: bytes) -> LoraUnloadRequest:
    return _decode(LoraUnloadRequest, body)


def _single_prompt(raw: object, param: str) -> str | tuple[int, ...]:
    if isinstance(raw, list) and len(raw) == 1 and not _is_token_list(raw):
        raw = raw[0]  # a batch of one
    if isinstance(raw, str):
        if not raw:
            raise ApiError(400, f"{param} must not be empty.", param=param)
        return raw
    if isinstance(raw, list) and raw and _is_token_list(raw):
        return tuple(raw)
    if isinstance(raw, list) and len(raw) > 1:
        raise ApiError(400, f"igw-sim answers one {param} per request.", param=param)
    raise ApiError(400, f"{param} must be a non-empty string or a list of token ids.", param=param)


def _is_token_list(raw: object) -> bool:
    return (
        isinstance(raw, list)
        and bool(raw)
        and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in raw)
    )
