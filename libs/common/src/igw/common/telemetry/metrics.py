"""The Prometheus `/metrics` endpoint of an igw service.

`MetricsServer` serves one `CollectorRegistry` (each service builds its own, so tests can too) from
prometheus_client's threaded WSGI server. The server and its worker threads live outside the event
loop: a slow scrape never delays a request, and collecting the metrics only reads values the loop
has already published. `start` binds and returns at once; `stop` shuts the server down, closes the
socket and joins the serving thread, so the port is free when it returns.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Self
from wsgiref.simple_server import WSGIServer

import prometheus_client

__all__ = ["MetricsServer"]


class MetricsServer:
    """Serves `registry` at `http://host:port/metrics`; port 0 picks a free port."""

    def __init__(
        self,
        registry: prometheus_client.CollectorRegistry,
        *,
        host: str = "0.0.0.0",
        port: int = 9090,
    ) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the real one if 0 was asked for), else the one asked for."""
        return self._port

    def start(self) -> None:
        """Bind and start serving in a daemon thread; raises `OSError` if the port is taken."""
        if self._server is not None:
            raise RuntimeError("metrics server already started")
        self._server, self._thread = prometheus_client.start_http_server(
            self._port, self._host, self._registry
        )
        self._port = self._server.server_port

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, release the port and join the thread; a no-op if not started."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join(timeout)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
