"""The processes of the EPP request-path benchmarks, and the one gateway Envoy in front of them.

Processes: the fixed-answer upstream Envoy (`_epp_upstream`, 8 ports by default), the echo
ext_proc (`bench._echo_extproc`), the BBR (`igw.bbr.cli --streaming`, plaintext), the EPP
(`igw-epp --endpoints-file ... --secure-serving=false --tracing=false`, default config, so the
default scheduler and 50 ms scraping of every upstream's `/metrics`), and the gateway Envoy (2
workers). The gateway has one listener per scenario, alike but for their filters and cluster:

* `direct`: no ext_proc, round-robin over the upstreams (a STATIC cluster);
* `echo`: the echo ext_proc, request side FULL_DUPLEX_STREAMED only, round-robin;
* `epp_req`: the EPP with exactly the echo's filter settings (request side only), then Envoy's
  ORIGINAL_DST cluster on the EPP's `x-gateway-destination-endpoint`: the like-for-like pair;
* `epp`: the EPP in upstream's compatible config (response headers, FULL_DUPLEX_STREAMED response
  body and trailers sent too), ORIGINAL_DST;
* `chain`: the BBR (request side) then the EPP (compatible), ORIGINAL_DST;
* `chain_lean`: the BBR then the EPP in the lean response mode (response headers sent, body
  STREAMED, trailers skipped: igw's default, DESIGN §6.1), ORIGINAL_DST;
* `echo_chain`: the echo ext_proc twice (two streams of the same server), request side only,
  round-robin: the floor of any two Python ext_proc hops, for the latency figure;
* `echo_chain_lean`: the same, but the second echo also gets the response headers (and answers
  them at once), round-robin: the floor of the gRPC messages `chain_lean` exchanges (the lean
  EPP's one response-side message, which Envoy waits for before the answer goes on).

Every filter has its own ext_proc cluster (`ext_proc_<filter>`), so Envoy's `upstream_rq_total`
counts the streams each listener opened. `Stack` is a context manager: entering starts the
processes in order, each ready before the next; leaving (or a failed start) stops them all. The
children die with this process (PR_SET_PDEATHSIG). `started()` retries a start that failed
because a process died at once (a port race with other work on the machine) with fresh ports.
"""

from __future__ import annotations

import contextlib
import http.client
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bench._epp_upstream import upstream_bootstrap
from bench._errors import StartError
from igw.common.testing import (
    EnvoyProcess,
    ExtProcFilter,
    OriginalDstCluster,
    StaticCluster,
    free_port,
    gateway_bootstrap,
)
from igw.e2e.processes import ChildProcess

_BIN = Path(sys.executable).parent
LISTENERS = (
    "direct", "echo", "epp_req", "epp", "chain", "chain_lean", "echo_chain", "echo_chain_lean",
)  # fmt: skip
_ROUND_ROBIN = ("direct", "echo", "echo_chain", "echo_chain_lean")
"""Listeners without the EPP: Envoy spreads their requests itself."""
START_ATTEMPTS = 3
ENVOY_WORKERS = 2


def _compatible(name: str, port: int) -> ExtProcFilter:
    """The EPP's filter as upstream's Envoy config has it: the response side too."""
    return ExtProcFilter(
        name, port, tls=False, response_header_mode="SEND",
        response_body_mode="FULL_DUPLEX_STREAMED", response_trailer_mode="SEND",
    )  # fmt: skip


def _lean(name: str, port: int) -> ExtProcFilter:
    """The EPP's filter in the lean response mode: bodies only when the EPP asks for them."""
    return ExtProcFilter(
        name, port, tls=False, response_header_mode="SEND", response_body_mode="STREAMED",
        response_trailer_mode="SKIP",
    )  # fmt: skip


def _filters(grpc: dict[str, int]) -> dict[str, list[ExtProcFilter]]:
    """Listener -> its ext_proc filters, in order."""
    return {
        "direct": [],
        "echo": [ExtProcFilter("echo", grpc["echo"], tls=False)],
        "epp_req": [ExtProcFilter("epp_req", grpc["epp"], tls=False)],
        "epp": [_compatible("epp", grpc["epp"])],
        "chain": [
            ExtProcFilter("chain_bbr", grpc["bbr"], tls=False),
            _compatible("chain_epp", grpc["epp"]),
        ],
        "echo_chain": [
            ExtProcFilter("echo_a", grpc["echo"], tls=False),
            ExtProcFilter("echo_b", grpc["echo"], tls=False),
        ],
        "chain_lean": [
            ExtProcFilter("lean_bbr", grpc["bbr"], tls=False),
            _lean("lean_epp", grpc["epp"]),
        ],
        "echo_chain_lean": [
            ExtProcFilter("echo_lean_a", grpc["echo"], tls=False),
            ExtProcFilter("echo_lean_b", grpc["echo"], tls=False, response_header_mode="SEND"),
        ],
    }


def gateway_config(
    admin_port: int, listen: dict[str, int], grpc: dict[str, int], upstreams: list[int]
) -> dict[str, Any]:
    """One Envoy bootstrap holding every listener of the module docstring."""
    pool = [StaticCluster("pool_rr", tuple(("127.0.0.1", p) for p in upstreams))]
    configs: dict[str, dict[str, Any]] = {}
    for name, filters in _filters(grpc).items():
        cluster = "pool_rr" if name in _ROUND_ROBIN else "pool"
        configs[name] = gateway_bootstrap(
            listen_port=listen[name], admin_port=admin_port, ext_procs=filters, routes=(),
            clusters=[*pool, OriginalDstCluster("pool")], default_cluster=cluster,
            access_log=False,
        )  # fmt: skip
    merged = merge_listeners(configs)
    for listener in merged["static_resources"]["listeners"]:
        listener["filter_chains"][0]["filters"][0]["typed_config"]["stat_prefix"] = listener["name"]
    return merged


def merge_listeners(configs: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """One Envoy bootstrap from single-listener ones (`gateway_bootstrap`), keyed by the name
    each listener gets: the first's admin and settings, every listener, each cluster once."""
    merged: dict[str, Any] | None = None
    for name, config in configs.items():
        listener = config["static_resources"]["listeners"][0]
        listener["name"] = name
        if merged is None:
            merged = config
            continue
        resources = merged["static_resources"]
        resources["listeners"].append(listener)
        known = {c["name"] for c in resources["clusters"]}
        resources["clusters"] += [
            c for c in config["static_resources"]["clusters"] if c["name"] not in known
        ]
    if merged is None:
        raise ValueError("no listeners")
    return merged


class Stack:
    """Every process of one run; see the module docstring."""

    def __init__(self, workdir: Path, endpoints: int = 8, delay_s: float | None = None) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.upstream_ports = [free_port() for _ in range(endpoints)]
        self.grpc = {name: free_port() for name in ("echo", "bbr", "epp")}
        self.listen = {name: free_port() for name in LISTENERS}
        self.epp_metrics_port = free_port()
        endpoints_file = workdir / "endpoints.yaml"
        endpoints_file.write_text(
            "endpoints:\n"
            + "".join(
                f"  - {{name: up-{i}, address: 127.0.0.1, port: {p}}}\n"
                for i, p in enumerate(self.upstream_ports)
            )
        )
        self.upstream = EnvoyProcess(
            upstream_bootstrap(free_port(), self.upstream_ports, delay_s),
            concurrency=1,
            workdir=workdir,
        )
        self.children = {
            "echo": ChildProcess("echo", [sys.executable, "-m", "bench._echo_extproc", "--port",
                                          str(self.grpc["echo"])], workdir / "echo.log"),
            "bbr": ChildProcess("bbr", self._bbr_argv(), workdir / "bbr.log"),
            "epp": ChildProcess("epp", self._epp_argv(endpoints_file), workdir / "epp.log"),
        }  # fmt: skip
        config = gateway_config(free_port(), self.listen, self.grpc, self.upstream_ports)
        self.envoy = EnvoyProcess(config, concurrency=ENVOY_WORKERS, workdir=workdir)
        self._stack = contextlib.ExitStack()

    def _bbr_argv(self) -> list[str]:
        return [
            str(_BIN / "igw-bbr"), "--grpc-port", str(self.grpc["bbr"]),
            "--grpc-health-port", str(free_port()), "--metrics-port", str(free_port()),
            "--host", "127.0.0.1", "--streaming", "--kubernetes=off",
            "--secure-serving=false", "--metrics-endpoint-auth=false", "-v", "1",
        ]  # fmt: skip

    def _epp_argv(self, endpoints_file: Path) -> list[str]:
        return [
            str(_BIN / "igw-epp"), "--grpc-port", str(self.grpc["epp"]),
            "--grpc-health-port", str(free_port()), "--metrics-port", str(self.epp_metrics_port),
            "--host", "127.0.0.1", "--endpoints-file", str(endpoints_file),
            "--secure-serving=false", "--tracing=false", "--metrics-endpoint-auth=false",
            "-v", "1",
        ]  # fmt: skip

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as stack:
            stack.callback(self.upstream.stop)
            self.upstream.start()
            for name, child in self.children.items():
                stack.callback(child.stop)
                child.start(ready_port=self.grpc[name])
            stack.callback(self.envoy.stop)
            self.envoy.start()
            time.sleep(1.0)  # the EPP's first scrapes, so that every endpoint is fresh
            # A child whose port another process took dies, while the port still answers.
            if dead := [
                n for n, c in self.children.items() if c.process and c.process.poll() is not None
            ]:
                raise StartError(f"{', '.join(dead)} exited during start-up\n{self.log_tails()}")
            self._stack = stack.pop_all()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    @classmethod
    @contextlib.contextmanager
    def started(cls, workdir: Path, delay_s: float | None = None) -> Iterator[Stack]:
        """A running stack, after at most `START_ATTEMPTS` tries; stopped on leaving."""
        for attempt in range(1, START_ATTEMPTS + 1):
            stack = cls(workdir / f"attempt-{attempt}", delay_s=delay_s)
            try:
                stack.__enter__()
            except RuntimeError as e:  # StartError, EnvoyError, a child that never served
                print(f"start attempt {attempt} failed: {str(e).splitlines()[0]}", file=sys.stderr)
                if attempt == START_ATTEMPTS:
                    raise
                continue
            try:
                yield stack
            finally:
                stack.__exit__(None, None, None)
            return

    def url(self, listener: str) -> str:
        return f"http://127.0.0.1:{self.listen[listener]}/v1/chat/completions"

    def pids(self) -> dict[str, int]:
        """Process name -> PID of every process whose CPU a round accounts for."""
        out = {n: c.process.pid for n, c in self.children.items() if c.process is not None}
        for name, envoy in (("envoy", self.envoy), ("upstream", self.upstream)):
            if envoy.pid is not None:
                out[name] = envoy.pid
        return out

    def ext_proc_streams(self) -> dict[str, int]:
        """ext_proc filter -> gRPC streams the gateway has opened to it so far."""
        stats = self.envoy.admin_stats("cluster.ext_proc_")
        suffix = ".upstream_rq_total"
        return {
            name.removeprefix("cluster.ext_proc_").removesuffix(suffix): value
            for name, value in stats.items()
            if name.endswith(suffix)
        }

    def epp_requests(self) -> int:
        """The sum of the EPP's `inference_objective_request_total` series."""
        connection = http.client.HTTPConnection("127.0.0.1", self.epp_metrics_port, timeout=5)
        try:
            connection.request("GET", "/metrics")
            text = connection.getresponse().read().decode()
        finally:
            connection.close()
        prefix = "inference_objective_request_total{"
        return int(
            sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(prefix))
        )

    def log_tails(self, lines: int = 15) -> str:
        parts = [f"--- {n} log\n{c.log_tail(lines)}" for n, c in self.children.items()]
        parts.append(f"--- envoy log\n{self.envoy.log_tail(lines)}")
        parts.append(f"--- upstream envoy log\n{self.upstream.log_tail(lines)}")
        return "\n".join(parts)
