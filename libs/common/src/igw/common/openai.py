"""Fast, partial access to OpenAI-style request bodies.

The hot path never decodes a whole prompt: a `FieldDecoder` is built once (at start-up) for the
top-level fields a service needs, and msgspec then skips every other value while still checking
that the body is one well-formed JSON object. Each wanted field comes back as raw JSON bytes
(`msgspec.Raw`), to be decoded only if and when it is used.

The API type comes from the path suffix, as upstream GIE does (so provider paths such as
`/v1/projects/p/locations/l/endpoints/e/chat/completions` work); an unknown suffix means
completions.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from igw.common.errors import BadRequestError

__all__ = ["ApiType", "FieldDecoder", "api_type_for_path", "first_text", "is_empty", "raw_as_text"]


class ApiType(enum.Enum):
    """The OpenAI-compatible endpoint a request is for."""

    COMPLETIONS = "completions"
    CHAT_COMPLETIONS = "chat/completions"
    RESPONSES = "responses"
    CONVERSATIONS = "conversations"
    EMBEDDINGS = "embeddings"

    # Members are singletons compared by identity; Enum's own __hash__ is Python code, run by
    # the parsers' per-type tables on every request.
    __hash__ = object.__hash__


# Longest suffix first: "/chat/completions" must win over "/completions".
_SUFFIXES: Final = (
    ("/chat/completions", ApiType.CHAT_COMPLETIONS),
    ("/conversations", ApiType.CONVERSATIONS),
    ("/completions", ApiType.COMPLETIONS),
    ("/embeddings", ApiType.EMBEDDINGS),
    ("/responses", ApiType.RESPONSES),
)


def api_type_for_path(path: str) -> ApiType:
    """The API type of a request path (query string ignored); completions when unknown."""
    path = path.split("?", 1)[0].rstrip("/")
    for suffix, api_type in _SUFFIXES:
        if path.endswith(suffix):
            return api_type
    return ApiType.COMPLETIONS


class FieldDecoder:
    """Decodes only the named top-level fields of a JSON object body, as raw JSON.

    Built once per configuration; `decode` is safe to call concurrently.
    """

    def __init__(self, fields: Iterable[str]) -> None:
        names = sorted(set(fields))
        self.fields: tuple[str, ...] = tuple(names)
        # Field names may be any JSON key (e.g. "model", "x-tenant"), so map them to safe
        # attribute names and let msgspec rename them back.
        spec = [(f"f{i}", msgspec.Raw, None) for i in range(len(names))]
        rename = {f"f{i}": name for i, name in enumerate(names)}
        struct = msgspec.defstruct("SelectedFields", spec, rename=rename, frozen=True)
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(struct)
        self._attrs = tuple(f"f{i}" for i in range(len(names)))

    def decode(self, body: bytes | memoryview) -> dict[str, msgspec.Raw]:
        """Wanted field -> raw JSON value, for the fields present (a JSON `null` counts as absent).

        Raises `BadRequestError` when the body is not a single JSON object.
        """
        try:
            selected = self._decoder.decode(body)
        except msgspec.ValidationError as e:
            raise BadRequestError(f"failed to parse request body: {_describe(e)}") from None
        except msgspec.DecodeError as e:
            raise BadRequestError(f"failed to parse request body: {e}") from None
        except RecursionError:
            # msgspec checks even skipped values and gives up on deep nesting this way.
            raise BadRequestError("failed to parse request body: nested too deeply") from None
        out: dict[str, msgspec.Raw] = {}
        for attr, name in zip(self._attrs, self.fields, strict=True):
            raw = getattr(selected, attr)
            if raw is not None and raw != _NULL:
                out[name] = raw
        return out


def _describe(error: msgspec.ValidationError) -> str:
    text = str(error)
    if text.startswith("Expected `object`"):
        return "the body must be a JSON object, " + text[0].lower() + text[1:]
    return text


_NULL: Final = msgspec.Raw(b"null")
_STRING_DECODER: Final = msgspec.json.Decoder(str)


def raw_as_text(raw: msgspec.Raw) -> str:
    """A raw JSON value as header text: strings unquoted, anything else as its compact JSON."""
    # msgspec does not check UTF-8 inside raw values; invalid bytes become U+FFFD, as Go's JSON
    # decoding makes them upstream, rather than an exception that would abort the stream.
    data = bytes(raw)
    if data[:1] == b'"':
        return _STRING_DECODER.decode(data.decode("utf-8", "replace"))
    return _compact(data).decode("utf-8", "replace")


def is_empty(raw: msgspec.Raw) -> bool:
    """True for `""`, `[]` and `{}` (in any layout): present, but nothing to route on."""
    data = bytes(raw)
    if data[:1] in (b"[", b"{"):
        data = _compact(data)
    return data in (b'""', b"[]", b"{}")


def _compact(data: bytes) -> bytes:
    # A raw value keeps the client's layout (newlines, indentation); a header value cannot.
    return msgspec.json.format(data, indent=-1)


def first_text(fields: Mapping[str, msgspec.Raw], name: str) -> str | None:
    """The field as header text, or None when absent."""
    raw = fields.get(name)
    return None if raw is None else raw_as_text(raw)
