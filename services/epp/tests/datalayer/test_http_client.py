"""The scraper's HTTP client against real loopback servers that answer well and badly.

Each server is a few lines of `asyncio.start_server` playing one script per request, so every
misbehaviour (slow, cut off, garbage, oversized, endless) is real bytes on a real socket.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from igw.common.tls import self_signed_pair
from igw.epp.datalayer.http_client import FetchError, HttpClient

PAGE = b"# TYPE m gauge\nm 1\n" * 500
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(PAGE)

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server running `script` for every request; counts connections and requests."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                await self.script(reader, writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[tuple[Server, HttpClient]]]]:
    made: list[tuple[Server, HttpClient]] = []

    async def start(script: Script) -> tuple[Server, HttpClient]:
        server = Server(script)
        port = await server.start()
        client = HttpClient("127.0.0.1", port, "/metrics", timeout_s=0.3, max_body_bytes=65536)
        made.append((server, client))
        return server, client

    yield start
    for server, client in made:
        client.close()
        await server.close()


def reply(*parts: bytes, then_close: bool = False) -> Script:
    async def script(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for part in parts:
            writer.write(part)
            await writer.drain()
        if then_close:
            writer.close()

    return script


async def hang(_: asyncio.StreamReader, __: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)


def chunked(body: bytes, size: int, extension: bytes = b"") -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in pieces)
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(reply(OK + PAGE), id="content-length-one-write"),
        pytest.param(reply(*(bytes([b]) for b in OK + PAGE[:100]), PAGE[100:]),
                     id="content-length-byte-by-byte"),
        pytest.param(reply(CHUNKED_HEAD + chunked(PAGE, 1000, b";ext=1")), id="chunked"),
        pytest.param(reply(CHUNKED_HEAD, *(bytes([b]) for b in chunked(PAGE[:300], 7))),
                     id="chunked-byte-by-byte"),
    ],
)  # fmt: skip
async def test_a_page_is_read_whole_and_the_connection_reused(
    serve: Callable[[Script], Awaitable[tuple[Server, HttpClient]]], script: Script
) -> None:
    server, client = await serve(script)
    first = await client.fetch()
    assert first in (PAGE, PAGE[:300])
    assert await client.fetch() == first
    assert (server.connections, len(server.requests), client.completed) == (1, 2, 2)


async def test_the_request_asks_for_the_page_uncompressed(
    serve: Callable[[Script], Awaitable[tuple[Server, HttpClient]]],
) -> None:
    server, client = await serve(reply(OK + PAGE))
    await client.fetch()
    (request,) = server.requests
    assert request.startswith(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"accept-encoding" not in request.lower()


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(reply(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi",
                           then_close=True), id="connection-close"),
        pytest.param(reply(b"HTTP/1.0 200 OK\r\n\r\nhi", then_close=True), id="until-close"),
        pytest.param(reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiEXTRA"),
                     id="more-than-announced"),
    ],
)  # fmt: skip
async def test_a_connection_that_cannot_be_reused_is_replaced(
    serve: Callable[[Script], Awaitable[tuple[Server, HttpClient]]], script: Script
) -> None:
    server, client = await serve(script)
    assert [await client.fetch() for _ in range(3)] == [b"hi"] * 3
    assert server.connections == 3


async def test_an_idle_connection_closed_by_the_server_is_replaced(
    serve: Callable[[Script], Awaitable[tuple[Server, HttpClient]]],
) -> None:
    """Keep-alive timeouts: the server drops the idle connection; the next poll still works."""
    server, client = await serve(reply(OK + PAGE))
    await client.fetch()
    for writer in server._writers:
        writer.transport.abort()
    await asyncio.sleep(0.01)
    assert await client.fetch() == PAGE
    assert server.connections == 2


async def test_a_reused_connection_dropped_before_answering_is_retried_once(
    serve: Callable[[Script], Awaitable[tuple[Server, HttpClient]]],
) -> None:
    """The race of a keep-alive timeout with the next request: retried on a new connection."""
    answers = [reply(OK + PAGE), reply(b"", then_close=True), reply(OK + PAGE)]

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answers.pop(0)(reader, writer)

    server, client = await serve(script)
    assert await client.fetch() == PAGE
    assert await client.fetch() == PAGE
    assert (server.connections, len(server.requests)) == (2, 3)


ENDLESS = CHUNKED_HEAD + b"".join([b"400\r\n" + b"x" * 1024 + b"\r\n"] * 100)


@pytest.mark.parametrize(
    ("script", "message"),
    [
        pytest.param(reply(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"), "HTTP 500",
                     id="http-500"),
        pytest.param(reply(b"HTTP/1.1 404 Not Found\r\n\r\n"), "HTTP 404", id="http-404"),
        pytest.param(reply(b"<html>\x00\xff not metrics {{{</html>\r\n\r\n"),
                     "not an HTTP/1.x status line", id="garbage"),
        pytest.param(reply(b"SSH-2.0-OpenSSH_9.6\r\n", then_close=True), "closed mid-answer",
                     id="garbage-then-close"),
        pytest.param(hang, "no complete answer within 0.3 s", id="no-answer"),
        pytest.param(reply(OK + PAGE[:100]), "no complete answer", id="slow-body"),
        pytest.param(reply(OK + PAGE[:100], then_close=True), "closed mid-answer",
                     id="closed-mid-body"),
        pytest.param(reply(b"", then_close=True), "closed the connection unanswered",
                     id="closed-before-answering"),
        pytest.param(reply(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n"),
                     "99999999 bytes over the 65536 limit", id="huge-content-length"),
        pytest.param(reply(ENDLESS), "over the 65536-byte limit", id="endless-chunked"),
        pytest.param(reply(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 70000), "over the 65536-byte",
                     id="endless-until-close"),
        pytest.param(reply(b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * 70000), "head longer",
                     id="endless-head"),
        pytest.param(reply(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2"
                           b"\r\n\r\nhi"), "unrequested Content-Encoding", id="gzip"),
        pytest.param(reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
                     "unsupported Transfer-Encoding", id="transfer-coding"),
        pytest.param(reply(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"),
                     "bad Content-Length", id="conflicting-lengths"),
        pytest.param(reply(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
                     "bad Content-Length", id="negative-length"),
        pytest.param(reply(CHUNKED_HEAD + b"zz\r\n"), "bad chunk size", id="bad-chunk-size"),
        pytest.param(reply(CHUNKED_HEAD + b"2\r\nhiXX"), "not followed by CRLF",
                     id="chunk-overrun"),
    ],
)  # fmt: skip
async def test_a_bad_answer_is_a_fetch_error_and_the_next_fetch_starts_afresh(
    serve: Callable[[Script], Awaitable[tuple[Server, HttpClient]]], script: Script, message: str
) -> None:
    server, client = await serve(script)
    started = time.monotonic()
    with pytest.raises(FetchError, match=message) as caught:
        await client.fetch()
    assert time.monotonic() - started < 2.0
    assert str(caught.value).startswith(f"{client.url}: ")
    server.script = reply(OK + PAGE)
    assert await client.fetch() == PAGE
    assert server.connections == 2


async def test_a_server_that_is_down_is_a_fetch_error(refused_port: int) -> None:
    client = HttpClient("127.0.0.1", refused_port, "/metrics", timeout_s=0.3)
    with pytest.raises(FetchError, match="cannot connect"):
        await client.fetch()


async def test_a_hanging_server_does_not_block_the_event_loop(
    serve: Callable[[Script], Awaitable[tuple[Server, HttpClient]]],
) -> None:
    _, client = await serve(hang)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    with pytest.raises(FetchError):
        await client.fetch()
    task.cancel()
    # A blocked loop would not tick at all; 0.3 s of timeout is about 30 ticks on a quiet
    # machine, and as few as 3 were seen on one with a load average of 18.
    assert ticks >= 2


async def test_a_cancelled_fetch_drops_its_connection(
    serve: Callable[[Script], Awaitable[tuple[Server, HttpClient]]],
) -> None:
    """A half-read answer must never be taken for the next one."""
    server, client = await serve(reply(OK + PAGE[:100]))
    fetch = asyncio.create_task(client.fetch())
    await asyncio.sleep(0.05)
    fetch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await fetch
    server.script = reply(OK + PAGE)
    assert await client.fetch() == PAGE
    assert server.connections == 2


async def test_one_fetch_at_a_time_and_none_after_close(
    serve: Callable[[Script], Awaitable[tuple[Server, HttpClient]]],
) -> None:
    _, client = await serve(hang)
    first = asyncio.create_task(client.fetch())
    await asyncio.sleep(0.01)
    with pytest.raises(FetchError, match="already in progress"):
        await client.fetch()
    client.close()
    with pytest.raises(FetchError):
        await first
    with pytest.raises(FetchError, match="closed"):
        await client.fetch()


@pytest.fixture
def tls_server_context(tmp_path: Path) -> ssl.SSLContext:
    cert, key = self_signed_pair("model-server")
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    return context


async def test_https_skipping_verification_reads_the_page(
    tls_server_context: ssl.SSLContext,
) -> None:
    server = Server(reply(OK + PAGE))
    port = await server.start(tls_server_context)
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    client = HttpClient("127.0.0.1", port, "/metrics", ssl_context=insecure, timeout_s=1.0)
    try:
        assert [await client.fetch() for _ in range(2)] == [PAGE, PAGE]
        assert client.url == f"https://127.0.0.1:{port}/metrics"
        assert server.connections == 1
    finally:
        client.close()
        await server.close()


async def test_https_verifying_refuses_a_self_signed_certificate(
    tls_server_context: ssl.SSLContext,
) -> None:
    server = Server(reply(OK + PAGE))
    port = await server.start(tls_server_context)
    client = HttpClient(
        "127.0.0.1", port, "/metrics", ssl_context=ssl.create_default_context(), timeout_s=1.0
    )
    try:
        with pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.fetch()
    finally:
        client.close()
        await server.close()
