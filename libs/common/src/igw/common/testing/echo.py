"""An aiohttp echo server that stands in for a model server behind the gateway.

It answers any method on any path with JSON describing what arrived: who served it, the request
line, the lower-cased headers, and the body's length and SHA-256, so a test can prove that a body
crossed Envoy and the ext_proc filters byte-exact. The body is streamed into the hash, so chunked
and multi-megabyte bodies need no size limit.

Each backend owns its runner; `stop()` closes it. Backends run on the caller's event loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

from aiohttp import web


class EchoBackend:
    """One echo server on 127.0.0.1; `port=0` picks a free port, readable after `start()`."""

    def __init__(self, name: str, port: int = 0) -> None:
        self.name = name
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Self:
        if self._runner is not None:
            raise RuntimeError(f"echo backend {self.name!r} was already started")
        # Binding first lets port 0 resolve to the real port before anyone asks for it.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._echo)
        self._runner = web.AppRunner(app, access_log=None)
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

    async def _echo(self, request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        length = 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            length += len(chunk)
        answer = {
            "served_by": self.name,
            "port": self.port,
            "method": request.method,
            "path": request.path_qs,
            "headers": {key.lower(): value for key, value in request.headers.items()},
            "body_len": length,
            "body_sha256": digest.hexdigest(),
        }
        return web.json_response(answer, headers={"x-served-by": self.name})


@contextlib.asynccontextmanager
async def run_echo_backends(*names: str) -> AsyncIterator[dict[str, EchoBackend]]:
    """Start one echo backend per name, each on a free port; stop them all on exit."""
    async with contextlib.AsyncExitStack() as stack:
        yield {name: await stack.enter_async_context(EchoBackend(name)) for name in names}
