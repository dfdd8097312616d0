"""A deterministic tokenizer that needs no model files: one token per 4 bytes of UTF-8 text.

The simulator only needs token *counts* (for cost and usage) and token *identity* (so that equal
prefixes give equal ids and hit the prefix cache). Both come from the bytes of the text:

- the UTF-8 encoding is cut into 4-byte chunks from its start; a last, shorter chunk is a token;
- a token's id is `zlib.crc32(chunk)`, a stable 32-bit value. CRC-32 is a bijection on 32-bit
  inputs, so two full chunks get the same id exactly when their bytes are equal.

Chat requests are rendered by one fixed template before encoding (`render_chat`):

    <|system|>\\nYou are terse.\\n<|user|>\\nHi\\n<|assistant|>\\n

one `<|role|>\\ncontent\\n` line group per message, then the generation prompt `<|assistant|>\\n`.
The generation prompt is itself the head of a rendered assistant message, so a follow-up turn
(`[..., user, assistant, user]`) starts with every byte of the earlier request: two chats that
share a system prompt and earlier turns share a token prefix, and multi-turn chats reuse their
history's KV blocks as they do on vLLM.

Why this agrees with the EPP's approximate prefix scorer: the EPP hashes the request text (the
prompt, or the JSON of `messages`) in blocks of `block_size_tokens * 4` bytes, chained from the
first block, assuming about 4 characters per token. Here a KV block of `block_size` tokens is
exactly `block_size * 4` bytes of the rendered prompt, also chained from the first block. Both
sides therefore see "shared prefix" as "equal leading bytes, counted in blocks of the same byte
size"; they differ only by the framing around each message (JSON quotes and keys there, the
`<|role|>` lines here), a few bytes per message. A request the EPP scores as matching k blocks on
a pod finds about k blocks cached there.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping

__all__ = [
    "BYTES_PER_TOKEN",
    "count",
    "count_chat",
    "encode",
    "encode_chat",
    "render_chat",
]

BYTES_PER_TOKEN = 4

_GENERATION_PROMPT = "<|assistant|>\n"


def encode(text: str) -> tuple[int, ...]:
    """Token ids of `text`: one per 4 bytes of its UTF-8 encoding, the last chunk may be short."""
    data = text.encode()
    crc32 = zlib.crc32
    return tuple(crc32(data[i : i + BYTES_PER_TOKEN]) for i in range(0, len(data), BYTES_PER_TOKEN))


def count(text: str) -> int:
    """The number of tokens `encode(text)` returns, without computing them."""
    return -(-len(text.encode()) // BYTES_PER_TOKEN)


def render_chat(
    messages: Iterable[Mapping[str, object]], *, add_generation_prompt: bool = True
) -> str:
    """Renders chat messages by the fixed template described in the module docstring.

    `content` is a string, None (an assistant turn with only tool calls), or a list of content
    parts: `{"type": "text", "text": ...}` parts are joined with newlines as vLLM does; any other
    part (an image, audio) is rendered as a `<|type|>` placeholder so it still takes space.
    """
    parts = [
        f"<|{message.get('role', 'user')}|>\n{_content_text(message)}\n" for message in messages
    ]
    if add_generation_prompt:
        parts.append(_GENERATION_PROMPT)
    return "".join(parts)


def encode_chat(
    messages: Iterable[Mapping[str, object]], *, add_generation_prompt: bool = True
) -> tuple[int, ...]:
    """Token ids of the rendered chat."""
    return encode(render_chat(messages, add_generation_prompt=add_generation_prompt))


def count_chat(
    messages: Iterable[Mapping[str, object]], *, add_generation_prompt: bool = True
) -> int:
    """Token count of the rendered chat."""
    return count(render_chat(messages, add_generation_prompt=add_generation_prompt))


def _content_text(message: Mapping[str, object]) -> str:
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_part_text(part) for part in content)
    raise ValueError(
        f"message content must be a string or a list of content parts, got {type(content).__name__}"
    )


def _part_text(part: object) -> str:
    if not isinstance(part, Mapping):
        # Malformed request JSON: a ValueError, which the server answers with 400.
        raise ValueError(f"content part must be an object, not {type(part).__name__}")  # noqa: TRY004
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise ValueError("a text content part needs a string 'text'")
        return text
    return f"<|{kind}|>"
