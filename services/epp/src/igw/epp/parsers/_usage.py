"""Token usage from OpenAI-style responses: one JSON body, or Server-Sent Events chunk by chunk.

* JSON: the chunks are kept (by reference) until the end of the body, then decoded once for the
  top-level `usage` object only.
* SSE: each complete line `data: {...}` that mentions `usage` is decoded; `[DONE]` is skipped; the
  first event with a top-level `usage` wins, or a Responses API `response.completed` event with
  `response.usage`. Unlike upstream, a line split across chunks is reassembled: the partial tail
  of each chunk waits for the next one (bounded, see `_MAX_TAIL`). Once usage is found, later
  chunks cost one attribute check.

Field names: `prompt_tokens`/`input_tokens`, `completion_tokens`/`output_tokens`, `total_tokens`;
cached tokens from `prompt_tokens_details` (OpenAI's and vLLM's spelling), `prompt_token_details`
(what upstream reads, its quirk #2) or `input_tokens_details`, whichever is present.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec

from igw.epp.framework.parsing import Usage

__all__ = ["OpenAIUsageReader", "usage_from_mapping"]

_MAX_TAIL: Final = 1 << 20
"""A partial SSE line longer than this is dropped: no usage event is that long."""
_DETAILS: Final = ("prompt_tokens_details", "prompt_token_details", "input_tokens_details")


class _UsageBody(msgspec.Struct):
    usage: dict[str, Any] | None = None


class _Response(msgspec.Struct):
    usage: dict[str, Any] | None = None


class _Event(msgspec.Struct):
    usage: dict[str, Any] | None = None
    type: Any = None
    response: _Response | None = None


_BODY_DECODER: Final = msgspec.json.Decoder(_UsageBody)
_EVENT_DECODER: Final = msgspec.json.Decoder(_Event)


def _count(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(float(value))
        except ValueError:
            return 0
    return 0


def _first(usage: Mapping[str, Any], *names: str) -> int:
    for name in names:
        value = usage.get(name)
        if value is not None:
            return _count(value)
    return 0


def usage_from_mapping(usage: Mapping[str, Any]) -> Usage:
    """A `Usage` from a decoded `usage` object; missing or odd values count as 0."""
    cached: int | None = None
    for name in _DETAILS:
        details = usage.get(name)
        if isinstance(details, dict) and "cached_tokens" in details:
            cached = _count(details["cached_tokens"])
            break
    return Usage(
        prompt_tokens=_first(usage, "prompt_tokens", "input_tokens"),
        completion_tokens=_first(usage, "completion_tokens", "output_tokens"),
        total_tokens=_first(usage, "total_tokens"),
        cached_tokens=cached,
    )


class OpenAIUsageReader:
    """`UsageReader` for one response; owned by one request, never shared."""

    __slots__ = ("_chunks", "_tail", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self._chunks: list[bytes] = []
        self._tail = b""

    def feed(self, chunk: bytes, *, end_of_stream: bool, streaming: bool) -> Usage | None:
        if self.usage is not None:
            return self.usage
        if streaming:
            self._feed_sse(chunk, end_of_stream)
            return self.usage
        if chunk:
            self._chunks.append(chunk)
        if end_of_stream:
            body = b"".join(self._chunks)
            self._chunks = []
            self._read_json(body)
        return self.usage

    def _read_json(self, body: bytes) -> None:
        if b"usage" not in body:
            return
        try:
            decoded = _BODY_DECODER.decode(body)
        except msgspec.MsgspecError:
            return  # not JSON, or `usage` is not an object: no usage, the body still goes out
        if decoded.usage is not None:
            self.usage = usage_from_mapping(decoded.usage)

    def _feed_sse(self, chunk: bytes, end_of_stream: bool) -> None:
        data = self._tail + chunk if self._tail else chunk
        cut = data.rfind(b"\n")
        if end_of_stream:
            complete, self._tail = data, b""
        elif cut < 0:
            self._tail = data if len(data) <= _MAX_TAIL else b""
            return
        else:
            complete, tail = data[:cut], data[cut + 1 :]
            self._tail = tail if len(tail) <= _MAX_TAIL else b""
        if b"usage" in complete:
            self._scan_lines(complete)

    def _scan_lines(self, lines: bytes) -> None:
        for line in lines.split(b"\n"):
            if not line.startswith(b"data:") or b"usage" not in line:
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                continue
            usage = _event_usage(payload)
            if usage is not None:
                self.usage = usage_from_mapping(usage)
                return


def _event_usage(payload: bytes) -> Mapping[str, Any] | None:
    try:
        event = _EVENT_DECODER.decode(payload)
    except msgspec.MsgspecError:
        return None
    if event.usage is not None:
        return event.usage
    if event.type == "response.completed" and event.response is not None:
        return event.response.usage
    return None
