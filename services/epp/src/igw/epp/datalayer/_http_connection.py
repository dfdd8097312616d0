"""The scraper's HTTP/1.1 connection: one `asyncio.Protocol` parsing one answer at a time.

What it understands: the status line, `Content-Length`, `Transfer-Encoding: chunked`, a body
delimited by the connection's close, and `Connection: close`; other headers are not looked at.
What it refuses, as a `FetchError` naming the cause: a status other than 200, a `Content-Encoding`
other than identity (none is asked for), other transfer codings, malformed framing, a head over
`max_header_bytes` or a body over `max_body_bytes`. Every failure aborts the connection: its
framing can no longer be trusted. `HttpClient` (`http_client`) drives it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import cast

__all__ = ["ClosedBeforeAnswerError", "Connection", "FetchError"]

_HEAD_END = b"\r\n\r\n"
_MAX_LINE = 4096
_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILER, _DONE = range(7)


class FetchError(Exception):
    """A fetch failed; the message says why (refused, timed out, HTTP 500, bad framing, ...)."""


class ClosedBeforeAnswerError(FetchError):
    """The server closed the connection before a single byte of the answer."""


class Connection(asyncio.Protocol):
    """One connection; parses one answer at a time into the waiter `request()` returns."""

    def __init__(self, max_header_bytes: int, max_body_bytes: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.keep_alive = True
        self._max_head = max_header_bytes
        self._max_body = max_body_bytes
        self._waiter: asyncio.Future[bytes] | None = None
        self._state = _DONE
        self._buffer = bytearray()
        self._parts: list[bytes] = []
        self._chunked_body = bytearray()  # not parts: a body of tiny chunks would be millions
        self._size = 0
        self._remaining = -1
        self._received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # a stream transport here
        self.open = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self._state == _BODY and self._remaining < 0:
            self._finish()  # the body was delimited by the close
        elif self._received == 0:
            self._fail(ClosedBeforeAnswerError("the server closed the connection unanswered"))
        else:
            why = f": {exc}" if exc else ""
            self._fail(FetchError(f"connection closed mid-answer{why}"))

    def request(self, data: bytes) -> asyncio.Future[bytes]:
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        self._state, self._received, self._size, self._remaining = _HEAD, 0, 0, -1
        if self.transport is None:
            self._fail(FetchError("not connected"))
        else:
            self.transport.write(data)
        return waiter

    def abort(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self._received += len(data)
        try:
            if self._state == _HEAD:
                self._read_head(data)
            elif self._state == _BODY:
                self._read_body(data)
            elif self._state != _DONE:
                self._buffer += data
                self._read_chunks()
            else:
                self._fail(FetchError("the server sent data nobody asked for"))
        except FetchError as exc:
            self._fail(exc)

    def _read_head(self, data: bytes) -> None:
        buffer = self._buffer
        if buffer:
            # Search only where the new bytes can complete the blank line: a head trickled in
            # byte by byte must not cost quadratic time.
            start = max(len(buffer) - 3, 0)
            buffer += data
            end = buffer.find(_HEAD_END, start)
            if end >= 0:
                data = bytes(buffer)
                buffer.clear()
        else:
            end = data.find(_HEAD_END)
            if end < 0:
                buffer += data
        if end < 0:
            if len(buffer) > self._max_head:
                raise FetchError(f"response head longer than {self._max_head} bytes")
            return
        chunked = self._parse_head(data[:end])
        rest = data[end + 4 :]
        if chunked:
            self._state = _CHUNK_SIZE
            buffer += rest
            self._read_chunks()
        else:
            self._state = _BODY
            if rest or self._remaining == 0:
                self._read_body(rest)

    def _parse_head(self, head: bytes) -> bool:
        """Checks the status and framing headers; returns whether the body is chunked.

        Only the four headers that matter are looked up (in the lower-cased head), rather than
        every line parsed: this runs for every page.
        """
        if len(head) > self._max_head:
            raise FetchError(f"response head longer than {self._max_head} bytes")
        end = head.find(b"\r\n")
        self.keep_alive = _check_status(head if end < 0 else head[:end])
        fields = head[end:].lower() if end >= 0 else b""
        for length in _values(fields, b"\r\ncontent-length:"):
            if not length.isdigit() or 0 <= self._remaining != int(length):
                raise FetchError(f"bad Content-Length: {length[:40]!r}")
            self._remaining = int(length)
        chunked = False
        for coding in _values(fields, b"\r\ntransfer-encoding:"):
            if coding != b"chunked":
                raise FetchError(f"unsupported Transfer-Encoding: {coding[:40]!r}")
            chunked = True
        for coding in _values(fields, b"\r\ncontent-encoding:"):
            if coding not in (b"identity", b""):
                raise FetchError(f"unrequested Content-Encoding: {coding[:40]!r}")
        for option in _values(fields, b"\r\nconnection:"):
            self.keep_alive = b"close" not in option and (
                self.keep_alive or b"keep-alive" in option
            )
        if chunked:
            # Chunked framing wins over a Content-Length (RFC 9112 §6.3); the pair is suspect,
            # so the connection is not reused.
            self.keep_alive = self.keep_alive and self._remaining < 0
            self._remaining = -1
        elif self._remaining < 0:
            self.keep_alive = False  # delimited by the close
        if self._remaining > self._max_body:
            raise FetchError(f"body of {self._remaining} bytes over the {self._max_body} limit")
        return chunked

    def _read_body(self, data: bytes) -> None:
        self._size += len(data)
        if self._remaining >= 0 and self._size >= self._remaining:
            if self._size > self._remaining:
                self.keep_alive = False  # more than announced: the stream is out of step
                data = data[: len(data) - (self._size - self._remaining)]
                self._size = self._remaining
            self._parts.append(data)
            self._finish()
            return
        if self._size > self._max_body:
            raise FetchError(f"body over the {self._max_body}-byte limit")
        self._parts.append(data)

    def _read_chunks(self) -> None:
        buffer = self._buffer
        while self._state != _DONE:
            if self._state == _CHUNK_DATA:
                take = min(self._remaining, len(buffer))
                if take == 0:
                    return
                self._chunked_body += buffer[:take]
                del buffer[:take]
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _CHUNK_END
                continue
            if self._state == _CHUNK_END:
                if len(buffer) < 2:
                    return
                if buffer[:2] != b"\r\n":
                    raise FetchError("chunk not followed by CRLF")
                del buffer[:2]
                self._state = _CHUNK_SIZE
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > _MAX_LINE:
                    raise FetchError("chunk size or trailer line too long")
                return
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if self._state == _TRAILER:
                if not line:
                    self.keep_alive = self.keep_alive and not buffer
                    self._parts = [bytes(self._chunked_body)]
                    self._finish()
                continue
            self._start_chunk(line)

    def _start_chunk(self, line: bytes) -> None:
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise FetchError(f"bad chunk size: {line[:40]!r}") from None
        if size < 0 or size_text.startswith((b"-", b"+", b"0x", b"0X")):
            raise FetchError(f"bad chunk size: {line[:40]!r}")
        self._size += size
        if self._size > self._max_body:
            raise FetchError(f"body over the {self._max_body}-byte limit")
        self._state, self._remaining = (_CHUNK_DATA, size) if size else (_TRAILER, -1)

    def _finish(self) -> None:
        parts, self._parts = self._parts, []
        self._state = _DONE
        self._buffer.clear()
        self._chunked_body.clear()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(parts[0] if len(parts) == 1 else b"".join(parts))

    def _fail(self, exc: FetchError) -> None:
        self._parts = []
        self._buffer.clear()
        self._chunked_body.clear()
        self._state = _DONE
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()


def _check_status(line: bytes) -> bool:
    """Raises unless `line` is an HTTP/1.x 200 status line; whether keep-alive is the default."""
    status = line.split(None, 2)
    if len(status) < 2 or not status[0].startswith(b"HTTP/1.") or not status[1].isdigit():
        raise FetchError(f"not an HTTP/1.x status line: {line[:80]!r}")
    if status[1] != b"200":
        raise FetchError(f"HTTP {status[1].decode()}")
    return status[0] != b"HTTP/1.0"


def _values(fields: bytes, name: bytes) -> Iterator[bytes]:
    """Each value of header `name` (`\\r\\nname:`, lower-case) in lower-cased header lines."""
    pos = fields.find(name)
    while pos >= 0:
        start = pos + len(name)
        stop = fields.find(b"\r\n", start)
        yield fields[start : stop if stop >= 0 else len(fields)].strip()
        pos = fields.find(name, start) if stop >= 0 else -1
