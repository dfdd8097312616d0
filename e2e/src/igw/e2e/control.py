"""The control channel of a running `igw-local run`: `igw-local restart epp|bbr` and `status`.

`igw-local run` listens on a Unix socket named after its listener port (`control_path`: one per
user and port, in the temp directory, so `igw-local restart` finds the gateway the way
`igw-local load` does, by `--port` or `$IGW_PORT`). A client sends one line (`restart epp`,
`restart bbr`, `status`) and reads the answer to the end: `ok` or `error` on the first line, then
what happened. Commands run one at a time; a restart's answer comes once the old process has
drained (seconds, up to its grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import typing
from collections.abc import AsyncIterator
from pathlib import Path

import structlog

if typing.TYPE_CHECKING:
    from igw.e2e.gateway import LocalGateway

__all__ = ["control_path", "default_port", "request", "serve_control"]

_log = structlog.get_logger("igw-local")


def default_port() -> int:
    """`make run`'s listener: `$IGW_PORT`, else 8080 (as `GatewayPorts.from_env`)."""
    return int(os.environ.get("IGW_PORT") or 8080)


def control_path(listen_port: int) -> Path:
    return Path(tempfile.gettempdir()) / f"igw-local-{os.getuid()}-{listen_port}.sock"


async def _answer(gateway: LocalGateway, line: str) -> str:
    words = line.split()
    if words == ["status"]:
        return f"ok\n{gateway.status()}"
    if len(words) != 2 or words[0] != "restart":
        return f"error\nunknown command {line!r}; try: restart epp | restart bbr | status"
    _log.info("rolling restart requested", service=words[1])
    try:
        report = await gateway.restart(words[1])
    except (ValueError, RuntimeError, TimeoutError) as e:
        return f"error\n{e}"
    return f"ok\n{report}"


@contextlib.asynccontextmanager
async def serve_control(gateway: LocalGateway) -> AsyncIterator[Path]:
    """Serve the control socket for `gateway` while the block runs; yields its path."""
    path = control_path(gateway.ports.listen)
    path.unlink(missing_ok=True)  # left by a gateway that was killed; ours holds the port now
    lock = asyncio.Lock()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await reader.readline()).decode(errors="replace").strip()
            async with lock:
                writer.write((await _answer(gateway, line)).encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_unix_server(handle, path=str(path))
    try:
        yield path
    finally:
        server.close()
        path.unlink(missing_ok=True)


async def request(listen_port: int, command: str) -> str:
    """Send `command` to the gateway on `listen_port`; its answer, or RuntimeError if it failed."""
    path = control_path(listen_port)
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        raise RuntimeError(
            f"no local gateway on port {listen_port} answers (no control socket at {path}); "
            "is `igw-local run` running there?"
        ) from None
    try:
        writer.write(command.encode() + b"\n")
        await writer.drain()
        answer = (await reader.read()).decode(errors="replace")
    finally:
        writer.close()
    verdict, _, text = answer.partition("\n")
    if verdict != "ok":
        raise RuntimeError(text.strip() or "the gateway closed the control connection")
    return text.rstrip("\n")
