"""A model server that generates: completions and chat completions, whole or streamed as SSE,
one token every `token_interval_s`, that a test can freeze, fail and stop.

Where `ScriptedModelServer` replays bytes a test wrote, `GeneratingModelServer` behaves like a
small vLLM for what the gateway sees of one: answers take time, streams are real SSE
(`igw.epp.testing.openai_answers`), and a client that leaves stops its request. The controls:

* `token_interval_s`: the wall time per token (a 500-token stream at 0.02 s lasts ten seconds,
  so a test can leave in the middle of it);
* `gate`: an `asyncio.Event`, set at start. Cleared, every request stops before its next token
  (and a new one before its first) until it is set again: the server holds requests open;
* the request header `x-return-error: <status>` answers that status with an OpenAI error body,
  before any generation (a deterministic failing pod);
* `stop()` ends every request before its next token: an open stream is cut off without its last
  chunk (the connection drops, as when a pod dies), a whole answer not yet sent gets a 503.

What a test reads: `received` (every request, as `Received`), `running` (requests generating or
held at the gate now), `cancelled` (requests that ended before their last token: the client left
or the server stopped) and `generated_tokens` (over all requests).

Prompt tokens are the prompt's whitespace-separated words (for a chat, over every message's
text); `max_tokens` (or `max_completion_tokens`) defaults to 16, as vLLM's completions do. The
server answers as whatever model it is asked for, as a pod that has every adapter loaded would.

Ownership: runs on the caller's event loop. It serves with aiohttp's handler cancellation (a
client that disconnects cancels its handler at once, also while the gate holds it), which
`LoopbackServer` does not turn on, hence its own `start()`. `stop()` (or leaving the `async with`)
closes it; a stopped server may be started again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Final, Self

import orjson
from aiohttp import web

from igw.common.testing.http_server import LoopbackServer
from igw.epp.testing.model_servers import Received
from igw.epp.testing.openai_answers import AnswerEncoder, error_body, usage

__all__ = ["RETURN_ERROR_HEADER", "GeneratingModelServer"]

RETURN_ERROR_HEADER: Final = "x-return-error"
DEFAULT_MAX_TOKENS: Final = 16
_PATHS: Final = {"/v1/completions": False, "/v1/chat/completions": True}
"""Generation paths, and whether each is a chat."""


class _BadRequestError(ValueError):
    """A request the server cannot generate for: answered 400 (404 at a path it does not serve)."""


@dataclass(frozen=True, slots=True)
class _Ask:
    """What one generation request asks for."""

    chat: bool
    model: str
    max_tokens: int
    stream: bool
    include_usage: bool
    prompt_tokens: int


@dataclass(slots=True)
class _Progress:
    """Tokens a request has generated so far; fewer than asked at its end means cut short."""

    tokens: int = 0


class GeneratingModelServer(LoopbackServer):
    """One generating server on `host`; `port=0` picks a free port, readable after `start()`."""

    kind = "model server"
    handler_cancellation = True

    def __init__(
        self,
        name: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_interval_s: float = 0.001,
    ) -> None:
        super().__init__(name, host=host, port=port)
        self.token_interval_s = token_interval_s
        self.gate = asyncio.Event()
        self.gate.set()
        self.received: list[Received] = []
        self.cancelled: list[Received] = []
        self.running = 0
        self.generated_tokens = 0
        self._stopping = False

    async def start(self) -> Self:
        self._stopping = False
        return await super().start()

    async def stop(self) -> None:
        """Ends every request before its next token (module docstring), then closes."""
        self._stopping = True
        self.gate.set()
        await super().stop()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        received = await Received.read(request)
        self.received.append(received)
        forced = request.headers.get(RETURN_ERROR_HEADER)
        if forced is not None:
            return self._error(int(forced), f"Injected error {forced} ({RETURN_ERROR_HEADER}).")
        try:
            ask = _read_ask(request.path, received.body)
        except ValueError as e:
            return self._error(404 if request.path not in _PATHS else 400, str(e))
        encoder = AnswerEncoder(chat=ask.chat, model=ask.model)
        progress = _Progress()
        self.running += 1
        try:
            if ask.stream:
                return await self._stream(request, ask, encoder, progress)
            return await self._whole(ask, encoder, progress)
        finally:
            self.running -= 1
            if progress.tokens < ask.max_tokens:
                self.cancelled.append(received)

    async def _next_token(self) -> bool:
        """Waits a token's time and the gate; False once the server is stopping."""
        await asyncio.sleep(self.token_interval_s)
        await self.gate.wait()
        if self._stopping:
            return False
        self.generated_tokens += 1
        return True

    async def _whole(
        self, ask: _Ask, encoder: AnswerEncoder, progress: _Progress
    ) -> web.StreamResponse:
        while progress.tokens < ask.max_tokens and await self._next_token():
            progress.tokens += 1
        if progress.tokens < ask.max_tokens:
            return self._error(503, "The server stopped before the request finished.")
        body = encoder.whole(progress.tokens, usage(ask.prompt_tokens, progress.tokens))
        return self._identified(web.Response(body=body, content_type="application/json"))

    async def _stream(
        self, request: web.Request, ask: _Ask, encoder: AnswerEncoder, progress: _Progress
    ) -> web.StreamResponse:
        response = self._identified(web.StreamResponse())
        response.content_type = "text/event-stream"
        response.headers["cache-control"] = "no-cache"
        await response.prepare(request)
        try:
            while progress.tokens < ask.max_tokens and await self._next_token():
                index = progress.tokens
                finish = "length" if index == ask.max_tokens - 1 else None
                event = encoder.token(index, finish)
                await response.write(encoder.first() + event if index == 0 else event)
                progress.tokens += 1
            if progress.tokens < ask.max_tokens:  # stopping: the connection drops mid-answer
                if request.transport is not None:
                    request.transport.close()
                return response
            if ask.include_usage:
                await response.write(encoder.usage(usage(ask.prompt_tokens, progress.tokens)))
            await response.write(encoder.done())
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client left: routine for a server, and counted by `handle`
        return response

    def _error(self, status: int, message: str) -> web.StreamResponse:
        body = error_body(status, message)
        return self._identified(
            web.Response(status=status, body=body, content_type="application/json")
        )

    def _identified(self, response: web.StreamResponse) -> web.StreamResponse:
        response.headers["x-served-by"] = self.name
        response.headers["x-inference-port"] = str(self.port)
        return response


def _read_ask(path: str, body: bytes) -> _Ask:
    """The request's generation parameters; ValueError for a body or path it cannot serve."""
    if path not in _PATHS:
        raise _BadRequestError(f"no generation at {path}")
    data = orjson.loads(body)  # orjson.JSONDecodeError is a ValueError
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        raise _BadRequestError("the body is not a JSON object naming a model")
    chat = _PATHS[path]
    options = data.get("stream_options")
    max_tokens = data.get("max_completion_tokens") or data.get("max_tokens") or DEFAULT_MAX_TOKENS
    return _Ask(
        chat=chat,
        model=data["model"],
        max_tokens=int(max_tokens),
        stream=bool(data.get("stream")),
        include_usage=isinstance(options, dict) and bool(options.get("include_usage")),
        prompt_tokens=len(_prompt_text(data, chat=chat).split()),
    )


def _prompt_text(data: dict[str, Any], *, chat: bool) -> str:
    if not chat:
        prompt = data.get("prompt", "")
        return prompt if isinstance(prompt, str) else " ".join(map(str, prompt))
    messages = data.get("messages")
    if not isinstance(messages, list):
        raise _BadRequestError("a chat needs a list of messages")
    return " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
