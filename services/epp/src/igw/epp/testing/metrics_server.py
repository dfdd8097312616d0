"""Fake model-server `/metrics` endpoints: one aiohttp app listening on many loopback ports.

Each port serves its own page and can be told to misbehave (`Behaviour`): answer 500, answer
garbage, or hang until the server closes. Pages may be served gzip-compressed to clients that ask
(as prometheus-client's ASGI app does for vLLM); the compressed body is made once per page.

Run as a program (`python -m igw.epp.testing.metrics_server --count 100 [--gzip]`) it serves the
realistic vLLM page on that many ports and prints them as one JSON line, then serves until killed:
benchmarks run it in another process so the scraper's CPU is measured alone.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import gzip
import json
import sys
from collections import Counter

from aiohttp import web

from igw.epp.testing.metrics_pages import vllm_page

__all__ = ["Behaviour", "MetricsServers"]


class Behaviour(enum.Enum):
    OK = "ok"
    ERROR = "error"
    """HTTP 500."""
    GARBAGE = "garbage"
    """HTTP 200 with a body that is not a metrics page."""
    HANG = "hang"
    """Never answers (until the servers close)."""


class MetricsServers:
    """Serves pages on loopback ports; `start()` then `close()`, on one event loop."""

    def __init__(self, *, gzip_pages: bool = False) -> None:
        self.hits: Counter[int] = Counter()
        self._gzip = gzip_pages
        self._pages: dict[int, tuple[bytes, bytes]] = {}
        self._behaviour: dict[int, Behaviour] = {}
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_get("/metrics", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        self._started = False

    async def start(self, count: int, page: bytes | None = None) -> list[int]:
        """Listen on `count` new ports (OS-chosen), each serving `page` (default: vLLM's)."""
        if not self._started:
            await self._runner.setup()
            self._started = True
        body = page if page is not None else vllm_page()
        ports = []
        for _ in range(count):
            site = web.TCPSite(self._runner, "127.0.0.1", 0, reuse_address=True)
            await site.start()
            port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # aiohttp keeps the bound server private
            self.set_page(port, body)
            ports.append(port)
        return ports

    def set_page(self, port: int, body: bytes) -> None:
        self._pages[port] = (body, gzip.compress(body, compresslevel=6) if self._gzip else b"")

    def set_behaviour(self, port: int, behaviour: Behaviour) -> None:
        self._behaviour[port] = behaviour

    async def close(self) -> None:
        self._release.set()
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = int(sockname[1]) if sockname else 0
        self.hits[port] += 1
        behaviour = self._behaviour.get(port, Behaviour.OK)
        if behaviour is Behaviour.ERROR:
            return web.Response(status=500, text="internal error")
        if behaviour is Behaviour.GARBAGE:
            return web.Response(body=b"<html>\x00\xff not metrics {{{</html>")
        if behaviour is Behaviour.HANG:
            await self._release.wait()
        plain, compressed = self._pages.get(port, (b"", b""))
        if compressed and "gzip" in request.headers.get("Accept-Encoding", ""):
            return web.Response(
                body=compressed,
                headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; version=0.0.4"},
            )
        return web.Response(body=plain, headers={"Content-Type": "text/plain; version=0.0.4"})


async def _serve(count: int, gzip_pages: bool) -> None:
    servers = MetricsServers(gzip_pages=gzip_pages)
    ports = await servers.start(count)
    sys.stdout.write(json.dumps({"ports": ports, "page_bytes": len(vllm_page())}) + "\n")
    sys.stdout.flush()
    try:
        await asyncio.Event().wait()
    finally:
        await servers.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--gzip", action="store_true", help="gzip pages for clients that ask")
    args = parser.parse_args()
    asyncio.run(_serve(args.count, args.gzip))


if __name__ == "__main__":
    main()
