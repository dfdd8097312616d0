"""The Prometheus `/metrics` endpoint of an igw service, optionally behind an authorizer.

`MetricsServer` serves one `CollectorRegistry` (each service builds its own, so tests can too) with
prometheus_client's WSGI app on a thread-per-request WSGI server. The server and its worker
threads live outside the event loop: a slow scrape never delays a request, and collecting the
metrics only reads values the loop has already published. `start` binds and returns at once;
`stop` shuts the server down, closes the socket and joins the serving thread, so the port is free
when it returns.

With an `authorizer` (`--metrics-endpoint-auth`, see `metrics_auth`), every request is checked
before the app sees it, on the request's own worker thread, so a blocking check (a call to the
Kubernetes API) holds up only that scrape. A refused request gets the decision's status and
message as `text/plain`; a 401 also carries `WWW-Authenticate: Bearer`. The app is wrapped before
the socket is bound: there is no moment when the port answers without the check.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Self
from wsgiref.simple_server import WSGIRequestHandler, make_server

import prometheus_client
import structlog
from prometheus_client.exposition import ThreadingWSGIServer

from igw.common.telemetry.metrics_auth import AccessDecision, MetricsAuthorizer

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["MetricsServer"]

_log = structlog.get_logger(__name__)


class MetricsServer:
    """Serves `registry` at `http://host:port/metrics`; port 0 picks a free port.

    `authorizer` None serves every request; otherwise each request must be allowed by it first.
    """

    def __init__(
        self,
        registry: prometheus_client.CollectorRegistry,
        *,
        host: str = "0.0.0.0",
        port: int = 9090,
        authorizer: MetricsAuthorizer | None = None,
    ) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._authorizer = authorizer
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port once started (the real one if 0 was asked for), else the one asked for."""
        return self._port

    def start(self) -> None:
        """Bind and start serving in a daemon thread; raises `OSError` if the port is taken."""
        if self._server is not None:
            raise RuntimeError("metrics server already started")
        app: WSGIApplication = prometheus_client.make_wsgi_app(self._registry)
        if self._authorizer is not None:
            app = _guarded(app, self._authorizer)
        family, host = _address_family(self._host, self._port)
        server_class = type("MetricsWSGIServer", (ThreadingWSGIServer,), {"address_family": family})
        self._server = make_server(host, self._port, app, server_class, _QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-server", daemon=True
        )
        self._thread.start()
        self._port = self._server.server_port
        _log.info("metrics_serving", port=self._port, auth=self._authorizer is not None)

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


def _guarded(app: WSGIApplication, authorizer: MetricsAuthorizer) -> WSGIApplication:
    """`app` behind `authorizer`: a refused request never reaches it."""

    def guarded(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        decision = authorizer.authorize(
            environ.get("HTTP_AUTHORIZATION"),
            verb=str(environ.get("REQUEST_METHOD", "GET")).lower(),
            path=environ.get("PATH_INFO") or "/",
        )
        if decision.allowed:
            return app(environ, start_response)
        return _refuse(decision, start_response)

    return guarded


def _refuse(decision: AccessDecision, start_response: StartResponse) -> list[bytes]:
    """The refusal as Go's `http.Error` writes it, which is what upstream answers with."""
    body = f"{decision.message}\n".encode()
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Length", str(len(body))),
    ]
    if decision.status == 401:
        headers.append(("WWW-Authenticate", "Bearer"))
    start_response(f"{decision.status.value} {decision.status.phrase}", headers)
    return [body]


def _address_family(host: str, port: int) -> tuple[socket.AddressFamily, str]:
    """IPv4 or IPv6 as `host` requires (the server class defaults to IPv4 only)."""
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, _, _, _, address = info[0]
    return family, str(address[0])


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape on stderr."""

    def log_message(self, format: str, *args: object) -> None:
        """Logs nothing."""
