"""The processes under test: the echo ext_proc, the BBR, and one Envoy in front of both.

Envoy gets two listeners built by `gateway_bootstrap`, one per ext_proc, alike in every way but
the processor they call: the same FULL_DUPLEX_STREAMED request body mode, plaintext gRPC to the
processor, no access log, and a route that Envoy answers itself with a fixed 200 once the filter
has let the request through. So a round's CPU is the ext_proc stream and nothing upstream.

Each listener has its own HCM stat prefix and ext_proc cluster (`ext_proc_echo`,
`ext_proc_bbr`), so the cluster's `upstream_rq_total` counts the gRPC streams each processor was
sent: the benchmark checks it, and the BBR's `bbr_success_total`, after every round.

Lifecycle: `Gateway` is a context manager. Entering starts the echo server, the BBR and Envoy in
that order, each ready (port open, Envoy LIVE) before the next; leaving, or a failed start, stops
whatever was started, Envoy first. The children also die with this process (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import http.client
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bench._errors import BenchmarkError
from igw.common.testing import EnvoyProcess, ExtProcFilter, free_port, gateway_bootstrap
from igw.e2e.processes import ChildProcess

COMPONENTS = ("echo", "bbr")
"""The two ext_procs, in the order each round pair measures them."""

ENVOY_CONCURRENCY = 2
"""Envoy worker threads, as in feasibility §2 (one per core of the 2-core build machine)."""


def bootstrap(
    admin_port: int, listen_ports: dict[str, int], ext_proc_ports: dict[str, int]
) -> dict[str, Any]:
    """One Envoy config whose listener for each component calls that component's ext_proc."""
    configs = [
        one_listener(name, admin_port, listen_ports[name], ext_proc_ports[name])
        for name in COMPONENTS
    ]
    merged = configs[0]
    for other in configs[1:]:
        for kind in ("listeners", "clusters"):
            merged["static_resources"][kind].extend(other["static_resources"][kind])
    return merged


def one_listener(
    name: str, admin_port: int, listen_port: int, ext_proc_port: int
) -> dict[str, Any]:
    config = gateway_bootstrap(
        listen_port=listen_port,
        admin_port=admin_port,
        ext_procs=[ExtProcFilter(name, ext_proc_port, tls=False)],
        routes=(),
        clusters=(),
        default_cluster=None,
        access_log=False,
    )
    listener = config["static_resources"]["listeners"][0]
    listener["name"] = name
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    manager["stat_prefix"] = name
    # Without upstream clusters every request falls through to the last route, a direct
    # response; make it a plain 200 so that any other status is an error.
    fallback = manager["route_config"]["virtual_hosts"][0]["routes"][-1]
    fallback["direct_response"] = {"status": 200, "body": {"inline_string": "ok\n"}}
    return config


class Gateway:
    """The three processes of one benchmark run; see the module docstring for the lifecycle."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self.ext_proc_ports = {name: free_port() for name in COMPONENTS}
        self.listen_ports = {name: free_port() for name in COMPONENTS}
        self.bbr_metrics_port = free_port()
        self.echo = ChildProcess(
            "echo",
            [
                sys.executable,
                "-m",
                "bench._echo_extproc",
                "--port",
                str(self.ext_proc_ports["echo"]),
            ],
            workdir / "echo.log",
        )
        self.bbr = ChildProcess("bbr", self._bbr_argv(), workdir / "bbr.log")
        config = bootstrap(free_port(), self.listen_ports, self.ext_proc_ports)
        self.envoy = EnvoyProcess(config, concurrency=ENVOY_CONCURRENCY, workdir=workdir)
        self._stack = contextlib.ExitStack()

    def _bbr_argv(self) -> list[str]:
        """The BBR as the chart runs it (full-duplex), but plaintext like the echo server."""
        return [
            sys.executable, "-m", "igw.bbr.cli",
            "--grpc-port", str(self.ext_proc_ports["bbr"]),
            "--grpc-health-port", str(free_port()),
            "--metrics-port", str(self.bbr_metrics_port),
            "--host", "127.0.0.1",
            "--streaming", "--kubernetes=off", "--secure-serving=false", "-v", "1",
            "--metrics-endpoint-auth=false",
        ]  # fmt: skip

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as stack:
            for child in (self.echo, self.bbr):
                stack.callback(child.stop)
                child.start(ready_port=self.ext_proc_ports[child.name])
            stack.callback(self.envoy.stop)
            self.envoy.start()
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def url(self, component: str) -> str:
        return f"http://127.0.0.1:{self.listen_ports[component]}/v1/chat/completions"

    def pids(self) -> dict[str, int]:
        """Process name -> PID for every process whose CPU time a round accounts for."""
        pids = {"echo": self.echo.process, "bbr": self.bbr.process}
        out = {name: process.pid for name, process in pids.items() if process is not None}
        if self.envoy.pid is not None:
            out["envoy"] = self.envoy.pid
        return out

    def ext_proc_streams(self) -> dict[str, int]:
        """Component -> gRPC streams Envoy has opened to its ext_proc so far."""
        stats = self.envoy.admin_stats("cluster.ext_proc_")
        return {name: stats[f"cluster.ext_proc_{name}.upstream_rq_total"] for name in COMPONENTS}

    def bbr_successes(self) -> int:
        """The BBR's `bbr_success_total`: requests whose body it processed."""
        connection = http.client.HTTPConnection("127.0.0.1", self.bbr_metrics_port, timeout=5)
        try:
            connection.request("GET", "/metrics")
            text = connection.getresponse().read().decode()
        finally:
            connection.close()
        for line in text.splitlines():
            if line.startswith("bbr_success_total "):
                return int(float(line.split()[1]))
        raise BenchmarkError("the BBR's /metrics has no bbr_success_total")

    def log_tails(self, lines: int = 20) -> str:
        """The end of every process's log, for a failure report."""
        parts = [f"--- {c.name} log\n{c.log_tail(lines)}" for c in (self.echo, self.bbr)]
        parts.append(f"--- envoy log\n{self.envoy.log_tail(lines)}")
        return "\n".join(parts)
