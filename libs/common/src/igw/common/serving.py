"""Lifecycle of an igw ext_proc service: gRPC servers, background tasks, ordered shutdown.

Ownership: `ExtProcServer` owns two `grpc.aio` servers (ext_proc on `grpc_port`, health on
`health_port`, both on the one event loop) and the background tasks handed to it (for example a
ConfigMap watch or a metrics scraper). Shutdown is ordered, as STYLE.md §14 asks:

1. health turns NOT_SERVING, so probes and Envoy's health checks stop sending new streams;
2. for `shutdown_delay_s` (0 by default) the ext_proc server still takes new streams, so that a
   proxy which has not yet seen the NOT_SERVING answer loses no request (kube-apiserver's
   `--shutdown-delay-duration`; the local gateway's rolling restart relies on it);
3. `server.stop(grace)` refuses new streams and lets in-flight ones (request and response phases)
   finish for up to `grace_s` seconds; streams still open then are cancelled;
4. background tasks are cancelled and awaited; the health server stops last, so probes get
   NOT_SERVING rather than a refused connection until the very end.

A process stopped by SIGTERM (`igw.common.cli.serve`) goes through these steps and exits 0; a
second SIGTERM during the drain kills it at once (the handler is removed after the first).

`SO_REUSEPORT` is disabled (unless `reuse_port` asks for it: the EPP's `--workers`) so that a port
already in use is an error at start-up rather than two processes silently sharing it.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import structlog

from igw.common.extproc import ExtProcServicer
from igw.common.health import HealthService
from igw.common.tls import server_credentials

__all__ = ["ExtProcServer", "ServerOptions", "wait_for_signal"]

_log = structlog.get_logger(__name__)

_GRPC_OPTIONS = (
    ("grpc.so_reuseport", 0),
    # Buffered mode sends a whole body in one message; Envoy's own buffer limit (1 MiB by
    # default) is the real cap, this only keeps gRPC's 4 MiB default out of the way.
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
)


@dataclass(frozen=True, slots=True)
class ServerOptions:
    grpc_port: int
    health_port: int
    host: str = "0.0.0.0"
    secure: bool = True
    cert_path: Path | None = None
    cert_reload: bool = False
    """Serve `cert_path`'s files as they change (see `igw.common.tls`)."""
    grace_s: float = 5.0
    """How long in-flight streams may run on after new ones are refused (`--grace-period`)."""
    shutdown_delay_s: float = 0.0
    """How long new streams are still taken after health turned NOT_SERVING (`--shutdown-delay`)."""
    health_on_grpc_port: bool = False
    """Also serve gRPC health on the ext_proc port (upstream's `--health-checking`)."""
    reuse_port: bool = False
    """Share the ext_proc port with other processes (SO_REUSEPORT; `igw-epp --workers`)."""


class ExtProcServer:
    """Runs one ext_proc service; see the module docstring for ownership and shutdown."""

    def __init__(
        self,
        servicer: ExtProcServicer,
        health: HealthService,
        options: ServerOptions,
        *,
        background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
        health_port_handlers: Sequence[grpc.GenericRpcHandler] = (),
    ) -> None:
        """`health_port_handlers` are served beside health on its insecure port (the EPP's
        admin API)."""
        self._servicer = servicer
        self._health = health
        self._options = options
        self._background = background
        self._health_port_handlers = tuple(health_port_handlers)
        self._tasks: list[asyncio.Task[None]] = []
        self._server: grpc.aio.Server | None = None
        self._health_server: grpc.aio.Server | None = None
        self.grpc_port = options.grpc_port
        self.health_port = options.health_port

    async def start(self) -> None:
        """Binds both ports (0 picks free ones: see `grpc_port`, `health_port`), starts serving."""
        opts = self._options
        server = grpc.aio.server(options=_grpc_port_options(opts))
        server.add_generic_rpc_handlers([self._servicer.rpc_handler()])
        if opts.health_on_grpc_port:
            server.add_generic_rpc_handlers([self._health.rpc_handler()])
        address = f"{opts.host}:{opts.grpc_port}"
        if opts.secure:
            self.grpc_port = server.add_secure_port(
                address, server_credentials(opts.cert_path, reload=opts.cert_reload)
            )
        else:
            self.grpc_port = server.add_insecure_port(address)
        health_server = grpc.aio.server(options=_GRPC_OPTIONS)
        health_server.add_generic_rpc_handlers(
            [self._health.rpc_handler(), *self._health_port_handlers]
        )
        self.health_port = health_server.add_insecure_port(f"{opts.host}:{opts.health_port}")
        await server.start()
        await health_server.start()
        self._server, self._health_server = server, health_server
        self._tasks = [asyncio.create_task(run()) for run in self._background]
        _log.info(
            "serving",
            grpc_port=self.grpc_port,
            health_port=self.health_port,
            secure=opts.secure,
        )

    async def stop(self) -> None:
        """Graceful, ordered stop (module docstring); safe to call twice."""
        self._health.shutdown()
        if self._server is not None:
            opts = self._options
            _log.info("draining", shutdown_delay_s=opts.shutdown_delay_s, grace_s=opts.grace_s)
            if opts.shutdown_delay_s > 0:
                await asyncio.sleep(opts.shutdown_delay_s)
            await self._server.stop(opts.grace_s)
            self._server = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._health_server is not None:
            await self._health_server.stop(0)
            self._health_server = None
        _log.info("stopped")


def _grpc_port_options(opts: ServerOptions) -> tuple[tuple[str, int], ...]:
    options = dict(_GRPC_OPTIONS)
    options["grpc.so_reuseport"] = int(opts.reuse_port)
    return tuple(options.items())


async def wait_for_signal() -> None:
    """Returns when the process gets SIGTERM or SIGINT (Kubernetes stop, Ctrl-C)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
