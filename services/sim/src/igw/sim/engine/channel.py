"""`TokenChannel`: hands one request's token events from the engine task to its reader.

The engine task `put`s events and finally `close`s the channel; the reader (the HTTP handler
streaming the response) awaits `get`. One deque and at most one pending future per request: no
task per request, no lock, and a reader that falls behind simply finds several events waiting.
Both sides run on the engine's event loop.
"""

from __future__ import annotations

import asyncio
from collections import deque

from igw.sim.engine.api import TokenEvent

__all__ = ["TokenChannel"]


class TokenChannel:
    __slots__ = ("_closed", "_events", "_waiter")

    def __init__(self) -> None:
        self._events: deque[TokenEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, event: TokenEvent) -> None:
        self._events.append(event)
        self._wake()

    def close(self) -> None:
        """No more events: `get` returns None once the queued ones are read. Idempotent."""
        self._closed = True
        self._wake()

    async def get(self) -> TokenEvent | None:
        """The next event, or None after the last one."""
        while not self._events:
            if self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._events.popleft()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
