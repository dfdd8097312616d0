"""A scripted model server for tests through a real gateway: it records what arrived and answers
exactly as told, in chunks, with pauses.

`EchoBackend` (igw.common.testing) proves a body crossed the gateway byte-exact but answers only
with its own JSON. Response-path tests need the opposite: a server whose answer is under the
test's control down to the chunk (a JSON body split inside the model name, an invalid body, a
body followed by a late empty end of stream, no body at all, a connection dropped mid-answer),
and request-path tests need the exact bytes the model server was sent (the model the EPP wrote
into the body). `ScriptedModelServer` does both: every request is kept in `received`, and the
reply is `answer(received)`, by default an OpenAI-style completion naming the model it was asked
for, as a real server would.

Each chunk is written and flushed on its own, with `pause_s` between chunks, so Envoy reads them
as separate body frames and the ext_proc filter sees several body messages. Servers bind any
loopback address (`127.0.0.2`, `127.0.0.3` ...: on Linux all of 127/8 is local), so tests can give
pods distinct IPs, which the subset hint and the testing filter match on.

A test that needs a server that takes time (SSE at a set token pace, requests held open, a
client's disconnect noticed, an injected error status) uses `GeneratingModelServer`
(`igw.epp.testing.generating_server`), which shares `Received`.

Runs on the caller's event loop; `stop()` (or leaving the `async with`) closes it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from igw.common.testing.http_server import LoopbackServer

__all__ = ["Answer", "Received", "ScriptedModelServer", "completion_answer", "served_by"]


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the model server got it (header names lower-cased)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    async def read(cls, request: web.Request) -> Received:
        """The request as it arrived, its body read whole."""
        return cls(
            method=request.method,
            path=request.path_qs,
            headers={key.lower(): value for key, value in request.headers.items()},
            body=await request.read(),
        )

    @property
    def model(self) -> str | None:
        """The body's `model`, when the body is a JSON object naming one."""
        try:
            data = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None
        model = data.get("model") if isinstance(data, dict) else None
        return model if isinstance(model, str) else None


@dataclass(frozen=True, slots=True)
class Answer:
    """What to reply: status, content type, and the body as the chunks to write one by one."""

    chunks: Sequence[bytes] = ()
    """Written in order, each flushed; an empty chunk writes nothing but still takes its pause
    (a trailing `b""` makes the end of stream arrive on its own, after the data)."""
    status: int = 200
    content_type: str = "application/json"
    content_length: bool = False
    """Announce the total length up front (as servers do for whole JSON bodies) instead of
    chunked transfer encoding."""
    pause_s: float = 0.02
    """Between chunks, so each reaches Envoy as a separate read."""
    headers: Mapping[str, str] = field(default_factory=dict)
    drop_after: int | None = None
    """Drop the connection once this many chunks are written, instead of ending the body: a
    model server that dies mid-answer (its kernel closes the socket, no last chunk is sent)."""


def completion_answer(received: Received) -> Answer:
    """An OpenAI-style completion answered as the model the request named, with usage."""
    body = {
        "id": "cmpl-1",
        "object": "text_completion",
        "model": received.model or "",
        "choices": [{"index": 0, "text": "ok", "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    return Answer(chunks=(orjson.dumps(body),), content_length=True)


class ScriptedModelServer(LoopbackServer):
    """One scripted server on `host`; `port=0` picks a free port, readable after `start()`."""

    kind = "model server"

    def __init__(
        self,
        name: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        answer: Callable[[Received], Answer] = completion_answer,
    ) -> None:
        super().__init__(name, host=host, port=port)
        self.answer = answer
        """Replaceable at any time; the next request gets the new answer."""
        self.received: list[Received] = []

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        received = await Received.read(request)
        self.received.append(received)
        answer = self.answer(received)
        response = web.StreamResponse(status=answer.status, headers=dict(answer.headers))
        response.headers["x-served-by"] = self.name
        response.content_type = answer.content_type
        if answer.content_length:
            response.content_length = sum(len(chunk) for chunk in answer.chunks)
        await response.prepare(request)
        for i, chunk in enumerate(answer.chunks):
            if i == answer.drop_after:
                break
            if i:
                await asyncio.sleep(answer.pause_s)
            if chunk:
                await response.write(chunk)
        else:
            await response.write_eof()
            return response
        await asyncio.sleep(answer.pause_s)  # the last chunk leaves before the socket closes
        if request.transport is not None:
            request.transport.close()
        return response


def served_by(servers: Sequence[ScriptedModelServer]) -> dict[str, int]:
    """How many requests each server has received, by name (0 included)."""
    return {server.name: len(server.received) for server in servers}
