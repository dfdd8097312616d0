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
from collections.abc import AsyncIterator

from aiohttp import web

from igw.common.testing.http_server import LoopbackServer


class EchoBackend(LoopbackServer):
    """One echo server on 127.0.0.1; `port=0` picks a free port, readable after `start()`."""

    kind = "echo backend"

    def __init__(self, name: str, port: int = 0) -> None:
        super().__init__(name, port=port)

    async def handle(self, request: web.Request) -> web.Response:
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
