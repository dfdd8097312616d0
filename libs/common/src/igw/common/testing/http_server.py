"""A loopback aiohttp server that test backends build on: bind, serve one handler, stop.

`LoopbackServer` binds its socket before serving, so `port=0` resolves to the real port as
soon as `start()` returns; subclasses give `handle`, which answers every method on every path.
Each server owns its runner and runs on the caller's event loop; `stop()` closes it.

A server can be stopped and started again on the same port (an outage, a restart): from its first
start it *holds* its port (`igw.common.testing.ports.hold_port`) until it exits its `async with`
or is collected, so the port cannot be taken by anyone else while it is down.
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import ClassVar, Self

from aiohttp import web

from igw.common.testing.ports import hold_port

__all__ = ["LoopbackServer"]


class LoopbackServer:
    """One aiohttp app on `host:port` routing everything to `handle`."""

    kind = "server"
    """How errors name it (`echo backend`, `model server`)."""
    handler_cancellation: ClassVar[bool] = False
    """aiohttp's handler cancellation: a handler is cancelled when its client goes away."""

    def __init__(self, name: str, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._hold: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    async def start(self) -> Self:
        if self._runner is not None:
            raise RuntimeError(f"{self.kind} {self.name!r} was already started")
        if self._hold is None:
            self._hold = hold_port(self.host, self.port)
            self.port = self._hold.getsockname()[1]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        # No request size limit: bodies of several MiB are the point of some tests.
        app = web.Application(client_max_size=0)
        app.router.add_route("*", "/{path:.*}", self.handle)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=self.handler_cancellation
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
        self.release()

    def release(self) -> None:
        """Give up the port held across stops (module docstring)."""
        hold = getattr(self, "_hold", None)  # None too if __init__ never ran to the end
        if hold is not None:
            hold.close()
            self._hold = None

    def __del__(self) -> None:
        self.release()
