"""The processes of the EPP streaming benchmark: one simulated pod, two EPPs, one Envoy.

    client -> Envoy :lean       -> EPP "lean"       (response body STREAMED, trailers SKIP)
           -> Envoy :compatible -> EPP "compatible" (response body FULL_DUPLEX_STREAMED)
                        both -> ORIGINAL_DST to the igw-sim pod the EPP picks

The two EPPs are the same program with the same flags (`--response-sample-rate 0`, the default);
only Envoy's filter config differs, so each request's mode is the listener it came in on, and
each EPP's CPU is its mode's. Both request sides are FULL_DUPLEX_STREAMED, plaintext gRPC, no
tracing. The pod is `igw-sim` at `--time-scale`, so tokens are paced as a decoding model paces
them (one SSE event per token), only faster.

Lifecycle: `StreamingGateway` is a context manager; entering starts the pod, the EPPs and Envoy,
each ready before the next; leaving (or a failed start) stops what was started, Envoy first. The
children die with this process (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import http.client
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from igw.common.testing import (
    EnvoyProcess,
    ExtProcFilter,
    OriginalDstCluster,
    free_port,
    gateway_bootstrap,
)
from igw.e2e.processes import ChildProcess

MODES = ("lean", "compatible")
"""The two EPP response modes, in the order each round measures them."""

MODEL = "m"
ENVOY_CONCURRENCY = 2
_FILTER_MODES: dict[str, dict[str, Any]] = {
    "lean": {"response_body_mode": "STREAMED", "response_trailer_mode": "SKIP"},
    "compatible": {
        "response_body_mode": "FULL_DUPLEX_STREAMED",
        "response_trailer_mode": "SEND",
    },
}


def _listener(mode: str, admin_port: int, listen_port: int, epp_port: int) -> dict[str, Any]:
    epp = ExtProcFilter(
        f"epp_{mode}", epp_port, tls=False, response_header_mode="SEND", **_FILTER_MODES[mode]
    )
    config = gateway_bootstrap(
        listen_port=listen_port, admin_port=admin_port, ext_procs=[epp], routes=(),
        clusters=[OriginalDstCluster(f"pool_{mode}")], default_cluster=f"pool_{mode}",
        access_log=False,
    )  # fmt: skip
    listener = config["static_resources"]["listeners"][0]
    listener["name"] = mode
    listener["filter_chains"][0]["filters"][0]["typed_config"]["stat_prefix"] = mode
    return config


def bootstrap(admin_port: int, listen: dict[str, int], epps: dict[str, int]) -> dict[str, Any]:
    """One Envoy config with a listener per mode, each calling that mode's EPP."""
    configs = [_listener(mode, admin_port, listen[mode], epps[mode]) for mode in MODES]
    merged = configs[0]
    for other in configs[1:]:
        for kind in ("listeners", "clusters"):
            merged["static_resources"][kind].extend(other["static_resources"][kind])
    return merged


class StreamingGateway:
    """The processes of one run; see the module docstring for the lifecycle."""

    def __init__(self, workdir: Path, *, time_scale: float) -> None:
        self.pod_port = free_port()
        self.epp_ports = {mode: free_port() for mode in MODES}
        self.metrics_ports = {mode: free_port() for mode in MODES}
        self.listen_ports = {mode: free_port() for mode in MODES}
        endpoints = workdir / "endpoints.yaml"
        endpoints.write_text(
            f"endpoints:\n- {{name: sim-0, address: 127.0.0.1, port: {self.pod_port}}}\n"
        )
        self.pod = ChildProcess("sim", self._sim_argv(time_scale), workdir / "sim.log")
        self.epps = {
            mode: ChildProcess(mode, self._epp_argv(mode, endpoints), workdir / f"epp_{mode}.log")
            for mode in MODES
        }
        config = bootstrap(free_port(), self.listen_ports, self.epp_ports)
        self.envoy = EnvoyProcess(config, concurrency=ENVOY_CONCURRENCY, workdir=workdir)
        self._stack = contextlib.ExitStack()

    def _sim_argv(self, time_scale: float) -> list[str]:
        return [
            sys.executable, "-m", "igw.sim.cli", "--port", str(self.pod_port), "--model", MODEL,
            "--host", "127.0.0.1", "--time-scale", str(time_scale), "--max-model-len", "4096",
            "--tracing=false", "-v", "1",
        ]  # fmt: skip

    def _epp_argv(self, mode: str, endpoints: Path) -> list[str]:
        return [
            sys.executable, "-m", "igw.epp.cli",
            "--grpc-port", str(self.epp_ports[mode]), "--grpc-health-port", str(free_port()),
            "--metrics-port", str(self.metrics_ports[mode]), "--host", "127.0.0.1",
            "--endpoints-file", str(endpoints), "--secure-serving=false", "--tracing=false",
            "--metrics-endpoint-auth=false", "-v", "1",
        ]  # fmt: skip

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as stack:
            stack.callback(self.pod.stop)
            self.pod.start(ready_port=self.pod_port)
            for mode, epp in self.epps.items():
                stack.callback(epp.stop)
                epp.start(ready_port=self.epp_ports[mode])
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

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.listen_ports[mode]}/v1/chat/completions"

    def pids(self) -> dict[str, int]:
        """Process name -> PID: the two EPPs by mode, `sim` and `envoy`."""
        children = {**self.epps, "sim": self.pod}
        out = {name: c.process.pid for name, c in children.items() if c.process is not None}
        if self.envoy.pid is not None:
            out["envoy"] = self.envoy.pid
        return out

    def bodies_read(self, mode: str) -> float:
        """Responses whose end that mode's EPP saw (the response-size histogram's count)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.metrics_ports[mode], timeout=5)
        try:
            connection.request("GET", "/metrics")
            text = connection.getresponse().read().decode()
        finally:
            connection.close()
        prefix = "inference_objective_response_sizes_count{"
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))

    def log_tails(self, lines: int = 20) -> str:
        children = [self.pod, *self.epps.values()]
        parts = [f"--- {c.name} log\n{c.log_tail(lines)}" for c in children]
        parts.append(f"--- envoy log\n{self.envoy.log_tail(lines)}")
        return "\n".join(parts)
