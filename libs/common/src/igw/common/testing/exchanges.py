"""A recording ext_proc exchange and message-playing helpers for tests of the serving core.

Tests of `igw.common.extproc.Stream` (and of services built on it) play the messages Envoy sends
for one HTTP request and check the replies plus what the exchange was shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from igw.common.envoy import NO_CHANGES, BodyMode, HeaderChanges, ProcessingRequest
from igw.common.errors import InferenceError
from igw.common.extproc import PASS_THROUGH, HttpRequest, RequestVerdict, Stream
from igw.common.testing import messages
from igw.common.testing.messages import ReplyView

__all__ = [
    "RecordingExchange",
    "body_messages",
    "patterned",
    "play",
    "split",
    "stream_for",
]


@dataclass
class RecordingExchange:
    """Answers with fixed values and records every call the stream makes."""

    verdict: RequestVerdict = PASS_THROUGH
    response_changes: HeaderChanges = NO_CHANGES
    rewrite: Callable[[bytes], bytes] | None = None
    error: Exception | None = None
    body_wanted: bool = True
    """What `response_body_wanted` answers (False: skip the response body when the mode allows)."""
    requests: list[HttpRequest] = field(default_factory=list)
    response_headers_seen: list[tuple[Mapping[str, str], bool]] = field(default_factory=list)
    response_chunks: list[tuple[bytes, bool]] = field(default_factory=list)
    closed: list[bool] = field(default_factory=list)
    body_wanted_asked: int = 0
    response_metadata_seen: list[Mapping[str, Any]] = field(default_factory=list)
    interrupt: asyncio.Future[InferenceError] | None = None
    """What `interruption` answers."""

    async def request(self, request: HttpRequest) -> RequestVerdict:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return self.verdict

    async def response_headers(
        self, headers: Mapping[str, str], end_of_stream: bool
    ) -> HeaderChanges:
        self.response_headers_seen.append((dict(headers), end_of_stream))
        return self.response_changes

    async def response_body(self, chunk: bytes, end_of_stream: bool) -> bytes:
        self.response_chunks.append((chunk, end_of_stream))
        return chunk if self.rewrite is None else self.rewrite(chunk)

    def response_body_wanted(self) -> bool:
        self.body_wanted_asked += 1
        return self.body_wanted

    def close(self, completed: bool) -> None:
        self.closed.append(completed)

    def response_metadata(self, metadata: Mapping[str, Any]) -> None:
        self.response_metadata_seen.append(metadata)

    def response_dynamic_metadata(self) -> Mapping[str, Mapping[str, Any]] | None:
        return None

    def interruption(self) -> asyncio.Future[InferenceError] | None:
        return self.interrupt


def stream_for(
    exchange: RecordingExchange,
    request_mode: BodyMode = BodyMode.FULL_DUPLEX_STREAMED,
    response_mode: BodyMode = BodyMode.NONE,
) -> Stream:
    return Stream(exchange, request_mode, response_mode)


async def play(stream: Stream, *sent: ProcessingRequest) -> list[list[ReplyView]]:
    """The replies to each message, in order."""
    return [messages.describe_all(await stream.handle(message)) for message in sent]


def patterned(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def split(body: bytes, sizes: list[int]) -> list[bytes]:
    pieces, start = [], 0
    for size in sizes:
        pieces.append(body[start : start + size])
        start += size
    if start != len(body):
        raise ValueError(f"sizes add up to {start}, the body has {len(body)} bytes")
    return pieces


def body_messages(pieces: list[bytes]) -> list[ProcessingRequest]:
    return [
        messages.request_body(piece, end_of_stream=i == len(pieces) - 1)
        for i, piece in enumerate(pieces)
    ]
