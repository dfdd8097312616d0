"""The OpenAI objects igw-sim answers with: responses, stream chunks, usage, errors, models.

Shapes follow what vLLM's OpenAI server sends (which the `openai` package's types accept):

* errors are `{"error": {"message", "type", "param", "code"}}` with `code` the HTTP status as an
  int, as vLLM does since it made its `ErrorResponse` OpenAI-compatible (the older flat
  `{"object": "error", ...}` is gone). `type` is the `openai` package's exception name for the
  status (`BadRequestError`, `NotFoundError`, `RateLimitError`, ...), as vLLM and llm-d's
  simulator name them;
* a streamed chat answer opens with a chunk whose delta is `{"role": "assistant", "content": ""}`,
  sent with the first token as vLLM does (so a client's time to first chunk is the TTFT), then
  one chunk per token; the last token's chunk carries `finish_reason`; with
  `stream_options.include_usage` one more chunk carries `usage` and no choices.

Generated text is filler: the word for output token `i` is `_WORDS[i % len(_WORDS)]` followed by a
space, so an answer's text depends only on its length. Stream chunks are built from a template
rendered once per request (`ChunkEncoder`), because a fleet streams thousands of them a second.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any, Final, Literal

import orjson

__all__ = [
    "ApiError",
    "ChunkEncoder",
    "Kind",
    "answer_text",
    "chat_completion",
    "completion",
    "embeddings_response",
    "error_body",
    "error_type",
    "model_list",
    "new_id",
    "token_text",
    "usage",
]

Kind = Literal["chat", "completion"]

_WORDS: Final = (
    "the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "seven",
    "simulated", "models", "answer", "every", "request", "with", "plain", "filler", "text", "so",
    "that", "routing", "tests", "can", "count", "tokens",
)  # fmt: skip
_TOKEN_TEXT: Final = tuple(f"{word} " for word in _WORDS)
_TOKEN_JSON: Final = tuple(orjson.dumps(text) for text in _TOKEN_TEXT)

# The status -> `type` names of the `openai` package's exceptions, which vLLM and llm-d use.
_ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "BadRequestError",
    401: "AuthenticationError",
    403: "PermissionDeniedError",
    404: "NotFoundError",
    409: "ConflictError",
    422: "UnprocessableEntityError",
    429: "RateLimitError",
}

_SENTINEL: Final = "\x00token\x00"
_OBJECTS: Final[Mapping[Kind, tuple[str, str]]] = {
    "chat": ("chat.completion", "chat.completion.chunk"),
    "completion": ("text_completion", "text_completion"),
}


class ApiError(Exception):
    """A request igw-sim refuses, answered with `status` and an OpenAI error body."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, type_: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.type = type_ or error_type(status)

    def body(self) -> bytes:
        return error_body(self.status, self.message, param=self.param, type_=self.type)


def error_type(status: int) -> str:
    """The `openai` package's exception name for an HTTP status."""
    if status >= 500:
        return "InternalServerError"
    return _ERROR_TYPES.get(status, "APIError")


def error_body(
    status: int, message: str, *, param: str | None = None, type_: str | None = None
) -> bytes:
    error = {"message": message, "type": type_ or error_type(status), "param": param}
    return orjson.dumps({"error": {**error, "code": status}})


def new_id(kind: Kind | Literal["embedding"]) -> str:
    prefix = {"chat": "chatcmpl", "completion": "cmpl", "embedding": "embd"}[kind]
    return f"{prefix}-{secrets.token_hex(16)}"


def token_text(index: int) -> str:
    """The filler text of output token `index`."""
    return _TOKEN_TEXT[index % len(_TOKEN_TEXT)]


def answer_text(tokens: int) -> str:
    return "".join(token_text(i) for i in range(tokens))


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


def chat_completion(
    request_id: str, model: str, tokens: int, finish_reason: str, usage_: dict[str, Any]
) -> bytes:
    message = {"role": "assistant", "content": answer_text(tokens)}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
    return _response(request_id, "chat.completion", model, choice, usage_)


def completion(
    request_id: str, model: str, tokens: int, finish_reason: str, usage_: dict[str, Any]
) -> bytes:
    choice = {
        "index": 0,
        "text": answer_text(tokens),
        "logprobs": None,
        "finish_reason": finish_reason,
    }
    return _response(request_id, "text_completion", model, choice, usage_)


def _response(
    request_id: str, obj: str, model: str, choice: dict[str, Any], usage_: dict[str, Any]
) -> bytes:
    created = int(time.time())
    body = {"id": request_id, "object": obj, "created": created, "model": model}
    return orjson.dumps({**body, "choices": [choice], "usage": usage_})


class ChunkEncoder:
    """Renders one streamed answer's SSE events (`data: {...}\\n\\n`).

    The per-token event is a prefix and suffix rendered once around the token's JSON string, so
    a token costs two byte concatenations rather than a JSON encode.
    """

    def __init__(self, kind: Kind, request_id: str, model: str) -> None:
        self._kind = kind
        self._head = {
            "id": request_id,
            "object": _OBJECTS[kind][1],
            "created": int(time.time()),
            "model": model,
        }
        rendered = self._event(self._choice(_SENTINEL, None))
        prefix, sep, suffix = rendered.partition(orjson.dumps(_SENTINEL))
        if not sep:
            raise RuntimeError("the token sentinel must appear in the rendered chunk")
        self._prefix, self._suffix = prefix, suffix

    def first(self) -> bytes:
        """The chat role chunk vLLM sends before the first token; nothing for completions."""
        if self._kind != "chat":
            return b""
        choice = {
            "index": 0,
            "delta": {"role": "assistant", "content": ""},
            "logprobs": None,
            "finish_reason": None,
        }
        return self._event(choice)

    def token(self, index: int, finish_reason: str | None = None) -> bytes:
        if finish_reason is not None:
            return self._event(self._choice(token_text(index), finish_reason))
        return self._prefix + _TOKEN_JSON[index % len(_TOKEN_JSON)] + self._suffix

    def usage(self, usage_: dict[str, Any]) -> bytes:
        return self._render({**self._head, "choices": [], "usage": usage_})

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"

    def _choice(self, text: str, finish_reason: str | None) -> dict[str, Any]:
        if self._kind == "chat":
            content: dict[str, Any] = {"delta": {"content": text}}
        else:
            content = {"text": text}
        return {"index": 0, **content, "logprobs": None, "finish_reason": finish_reason}

    def _event(self, choice: dict[str, Any]) -> bytes:
        return self._render({**self._head, "choices": [choice]})

    @staticmethod
    def _render(obj: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(obj) + b"\n\n"


def embeddings_response(
    request_id: str, model: str, vectors: list[list[float] | str], prompt_tokens: int
) -> bytes:
    data = [
        {"object": "embedding", "embedding": vector, "index": i} for i, vector in enumerate(vectors)
    ]
    return orjson.dumps(
        {
            "id": request_id,
            "object": "list",
            "created": int(time.time()),
            "model": model,
            "data": data,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
    )


def model_list(
    base: str, root: str, max_model_len: int, adapters: Mapping[str, str], created: int
) -> bytes:
    """`GET /v1/models` as vLLM answers it: the base model, then each adapter with its parent."""
    cards = [_model_card(base, root, None, created, max_model_len)]
    cards += [
        _model_card(name, path, base, created, max_model_len)
        for name, path in sorted(adapters.items())
    ]
    return orjson.dumps({"object": "list", "data": cards})


def _model_card(
    model_id: str, root: str, parent: str | None, created: int, max_model_len: int
) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": created,
        "owned_by": "vllm",
        "root": root,
        "parent": parent,
        "max_model_len": max_model_len,
    }
