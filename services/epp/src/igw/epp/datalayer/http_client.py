"""A minimal HTTP/1.1 client for one job: `GET` one path from one server, again and again.

Why our own: the scraper fetches 100 pages every 50 ms, and a general client is built for every
other job too (request and header objects, cookie jars, connection pools, per-request timers and
tasks). Measured with `python -m bench.epp_cost --only scrape` (100 endpoints, 33 KB vLLM pages,
50 ms): the scraper cost 43-47 % of a core on aiohttp, 19-21 % on this client. Here each endpoint
gets one `HttpClient` holding one keep-alive connection (`_http_connection.Connection`, an
`asyncio.Protocol` that also holds the parsing rules) and a request pre-built as bytes, so a poll
is one `write`, one future and a few `find`s over the answer. No `Accept-Encoding` is sent.

Failures are `FetchError`s naming the URL and the cause: cannot connect, no complete answer
within the timeout (connecting included), or what the connection refused. Every failure closes
the connection; the next fetch opens a new one. A reused connection that the server closed before
answering (an idle keep-alive race) is retried once on a new connection, within the same deadline.

Ownership and lifecycle: one `HttpClient` per endpoint, driven by one task at a time (a second
concurrent `fetch` is refused); `close()` aborts the connection and makes later fetches fail. A
cancelled fetch aborts its connection, so a half-read answer is never mistaken for the next one.
"""

from __future__ import annotations

import asyncio
import ssl

from igw.epp.datalayer._http_connection import ClosedBeforeAnswerError, Connection, FetchError

__all__ = ["FetchError", "HttpClient"]


class HttpClient:
    """Fetches `GET path` from one server over one reused connection."""

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = 1.0,
        max_header_bytes: int = 64 * 1024,
        max_body_bytes: int = 16 * 1024 * 1024,
        accept: str = "*/*",
    ) -> None:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        scheme = "https" if ssl_context is not None else "http"
        self.url = f"{scheme}://{authority}{path}"
        self.completed = 0
        """Answers fetched whole; a cheap count for benchmarks and tests."""
        self._host, self._port, self._ssl = host, port, ssl_context
        self._timeout_s = timeout_s
        self._limits = (max_header_bytes, max_body_bytes)
        request = f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: {accept}\r\n\r\n"
        self._request = request.encode("ascii")
        self._connection: Connection | None = None
        self._busy = False
        self._closed = False

    async def fetch(self) -> bytes:
        """The body of a 200 answer; raises `FetchError` on anything else, within the timeout."""
        if self._closed:
            raise FetchError(f"{self.url}: the client is closed")
        if self._busy:
            raise FetchError(f"{self.url}: a fetch is already in progress")
        self._busy = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout_s
        try:
            connection = self._connection
            if connection is not None and connection.open:
                try:
                    return await self._exchange(loop, connection, deadline)
                except ClosedBeforeAnswerError:
                    pass  # the server dropped the idle connection as we reused it: retry once
            connection = await self._connect(deadline)
            return await self._exchange(loop, connection, deadline)
        except FetchError as exc:
            raise FetchError(f"{self.url}: {exc}") from None
        finally:
            self._busy = False

    def close(self) -> None:
        """Abort the connection; later fetches fail. Idempotent."""
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.abort()

    async def _connect(self, deadline: float) -> Connection:
        self._connection = None
        self._check_open()  # closed while the previous exchange was waiting?
        connection = Connection(*self._limits)
        try:
            async with asyncio.timeout_at(deadline):
                await asyncio.get_running_loop().create_connection(
                    lambda: connection, self._host, self._port, ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )  # fmt: skip
        except TimeoutError:
            connection.abort()
            raise FetchError(f"no connection within {self._timeout_s} s") from None
        except OSError as exc:  # refused, unreachable, TLS handshake (ssl.SSLError)
            raise FetchError(f"cannot connect: {exc}") from None
        if self._closed:  # closed while connecting
            connection.abort()
        self._check_open()
        self._connection = connection
        return connection

    def _check_open(self) -> None:
        # A method, not an inline test: the flag changes across awaits, which type narrowing
        # would not see.
        if self._closed:
            raise FetchError("the client is closed")

    async def _exchange(
        self, loop: asyncio.AbstractEventLoop, connection: Connection, deadline: float
    ) -> bytes:
        waiter = connection.request(self._request)
        timer = loop.call_at(deadline, _time_out, waiter, self._timeout_s)
        try:
            body = await waiter
        except BaseException:
            connection.abort()  # timed out, failed or cancelled: the framing is lost
            raise
        finally:
            timer.cancel()
        if not connection.keep_alive:
            connection.abort()
        self.completed += 1
        return body


def _time_out(waiter: asyncio.Future[bytes], timeout_s: float) -> None:
    if not waiter.done():
        waiter.set_exception(FetchError(f"no complete answer within {timeout_s} s"))
