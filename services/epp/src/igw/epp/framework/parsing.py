"""What a request parser is (`openai-parser`, `passthrough-parser`) and the values it returns.

A parser reads a request body once, at the end of the body, and answers with a `ParsedRequest`:
the model name, the stream flag and the text the prefix cache hashes. It may be asked to rewrite
the model name (`rewrite_model`) and, per request, gives a `UsageReader` that extracts token usage
from the response body as it streams by. Parsers hold no per-request state themselves and are
shared by every stream; a `UsageReader` belongs to one request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Protocol

from igw.common.openai import ApiType
from igw.epp.framework.plugin import Plugin

__all__ = ["ParsedRequest", "Parser", "Usage", "UsageReader"]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts a model server reported for one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int | None = None
    """`prompt_tokens_details.cached_tokens` (or a spelling variant); None when not reported."""


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """What the request path needs from a body; nothing else of it is decoded."""

    model: str
    """The model the client asked for; "" when the parser does not read models (passthrough)."""
    api_type: ApiType | None = None
    stream: bool = False
    cache_salt: str = ""
    prompt_text: str = ""
    """The text the prefix cache hashes (upstream §3.6)."""
    model_raw: bytes = b""
    """The `model` value exactly as the body spells it (quotes and escapes included)."""


class UsageReader(Protocol):
    """Extracts usage from one response body, fed chunk by chunk; the first usage found wins."""

    usage: Usage | None

    def feed(self, chunk: bytes, *, end_of_stream: bool, streaming: bool) -> Usage | None:
        """One response chunk (`streaming`: SSE events, else one JSON); the usage once found."""


class Parser(Plugin, Protocol):
    """Reads request bodies for one configuration; see the module docstring."""

    reads_models: ClassVar[bool]
    """False for parsers that cannot name the model (no rewrite, no usage)."""

    def parse(self, path: str, body: bytes) -> ParsedRequest:
        """Raises `BadRequestError` (400) with upstream's message for a body it cannot use."""

    def rewrite_model(self, body: bytes, parsed: ParsedRequest, target: str) -> bytes:
        """`body` with its `model` set to `target`; everything else kept as far as possible."""

    def usage_reader(self) -> UsageReader:
        """A fresh reader for one response."""
