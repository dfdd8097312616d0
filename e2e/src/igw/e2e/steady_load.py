"""Steady load through the local gateway while a fault happens, and what each request saw.

`SteadyLoad` runs `clients` loops, every second one streaming, each sending one chat request after
another until stopped. A request succeeds only if it ends with 200 and a complete answer: JSON
with a choice, or a server-sent-event stream whose last event is `data: [DONE]`; anything else
(another status, a reset, a truncated stream, a timeout) is a failure, kept with its reason.
`summary()` is the line a fault test prints: requests sent, succeeded, failed.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import time
from collections.abc import Callable

import aiohttp

from igw.e2e import pool

__all__ = ["LoadTally", "SteadyLoad", "chat_body"]

_TIMEOUT = aiohttp.ClientTimeout(total=120)


def chat_body(*, stream: bool, max_tokens: int, text: str = "Say hello") -> dict[str, object]:
    """A chat request for the pool's base model."""
    messages = [{"role": "user", "content": text}]
    return {"model": pool.BASE_MODEL, "messages": messages, "max_tokens": max_tokens,
            "stream": stream}  # fmt: skip


@dataclasses.dataclass(slots=True)
class LoadTally:
    """Counts of one load run; `failures` maps each failure's reason to how often it happened."""

    sent: int = 0
    succeeded: int = 0
    failures: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def summary(self, fault: str) -> str:
        reasons = f" ({dict(self.failures)})" if self.failures else ""
        return (
            f"{fault}: sent {self.sent}, succeeded {self.succeeded}, failed {self.failed}{reasons}"
        )


class SteadyLoad:
    """`async with SteadyLoad(url):` keeps requests flowing until the block ends."""

    def __init__(self, url: str, *, clients: int = 8, max_tokens: int = 40) -> None:
        self.url = f"{url}/v1/chat/completions"
        self.clients = clients
        self.max_tokens = max_tokens
        self.tally = LoadTally()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SteadyLoad:
        self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
        self._tasks = [
            asyncio.create_task(self._client(stream=i % 2 == 1)) for i in range(self.clients)
        ]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        if self._session is not None:
            await self._session.close()

    async def wait_for(self, condition: Callable[[LoadTally], bool], timeout_s: float) -> None:
        """Until `condition(tally)` holds (e.g. some requests succeeded); TimeoutError if not."""
        deadline = time.monotonic() + timeout_s
        while not condition(self.tally):
            if time.monotonic() > deadline:
                raise TimeoutError(self.tally.summary("load condition not met"))
            await asyncio.sleep(0.05)

    async def _client(self, *, stream: bool) -> None:
        while not self._stop.is_set():
            self.tally.sent += 1
            reason = await self._one(stream=stream)
            if reason is None:
                self.tally.succeeded += 1
            else:
                self.tally.failures[reason] += 1

    async def _one(self, *, stream: bool) -> str | None:
        """None if the request succeeded, else why it failed."""
        if self._session is None:
            raise RuntimeError("use SteadyLoad with `async with`")
        body = chat_body(stream=stream, max_tokens=self.max_tokens)
        try:
            async with self._session.post(self.url, json=body) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as e:
            return type(e).__name__
        if response.status != 200:
            return f"status {response.status}"
        return _stream_problem(text) if stream else _json_problem(text)


def _stream_problem(text: str) -> str | None:
    events = [line for line in text.splitlines() if line.startswith("data: ")]
    if not events or events[-1] != "data: [DONE]":
        return "truncated stream"
    return None


def _json_problem(text: str) -> str | None:
    try:
        answer = json.loads(text)
    except ValueError:
        return "not JSON"
    return None if answer.get("choices") else "no choices"
