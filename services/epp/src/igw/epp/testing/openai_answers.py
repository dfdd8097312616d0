"""The OpenAI answers `GeneratingModelServer` writes: whole responses, SSE events, usage, errors.

Shaped as vLLM's OpenAI server sends them, which is what the EPP parses:

* a whole answer is `{"id", "object", "created", "model", "choices", "usage"}`, the text in
  `choices[0].text` (completions) or `choices[0].message.content` (chat);
* a stream is one `data: {...}` event per token, compact JSON with `id` first; a chat stream opens
  with the role chunk (`delta: {"role": "assistant", "content": ""}`), sent with the first token;
  the last token's event carries `finish_reason: "length"`; with `stream_options.include_usage`
  one more event carries `usage` and no choices; then `data: [DONE]`;
* an error is `{"error": {"message", "type", "param", "code"}}`, `code` the HTTP status.

The text of token `i` is a fixed word, so an answer depends only on its length and the model it
names: the same request answered twice differs only in `id` and `created`.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Final

import orjson

__all__ = ["AnswerEncoder", "error_body", "token_text", "usage"]

_WORDS: Final = ("the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog")
_ERROR_TYPES: Final = {400: "BadRequestError", 404: "NotFoundError", 429: "RateLimitError"}


def token_text(index: int) -> str:
    """The text of output token `index`."""
    return _WORDS[index % len(_WORDS)] + " "


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def error_body(status: int, message: str) -> bytes:
    """An OpenAI error object, typed as the `openai` package names the status."""
    kind = "InternalServerError" if status >= 500 else _ERROR_TYPES.get(status, "APIError")
    return orjson.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": status}}
    )


class AnswerEncoder:
    """Renders one answer (a chat or a plain completion) as the model `model`."""

    def __init__(self, *, chat: bool, model: str) -> None:
        self._chat = chat
        self._head = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-{secrets.token_hex(16)}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": model,
        }

    def whole(self, tokens: int, usage_: dict[str, int]) -> bytes:
        text = "".join(token_text(i) for i in range(tokens))
        content = (
            {"message": {"role": "assistant", "content": text}} if self._chat else {"text": text}
        )
        choice = {"index": 0, **content, "finish_reason": "length"}
        return orjson.dumps({**self._head, "choices": [choice], "usage": usage_})

    def first(self) -> bytes:
        """The chat role event that goes out with the first token; nothing for completions."""
        if not self._chat:
            return b""
        return self._event([{"index": 0, "delta": {"role": "assistant", "content": ""}}])

    def token(self, index: int, finish_reason: str | None) -> bytes:
        text = token_text(index)
        content = {"delta": {"content": text}} if self._chat else {"text": text}
        return self._event([{"index": 0, **content, "finish_reason": finish_reason}])

    def usage(self, usage_: dict[str, int]) -> bytes:
        return self._event([], usage=usage_)

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"

    def _event(self, choices: list[dict[str, Any]], **extra: object) -> bytes:
        head = self._head
        if self._chat:
            head = {**head, "object": "chat.completion.chunk"}
        return b"data: " + orjson.dumps({**head, "choices": choices, **extra}) + b"\n\n"
