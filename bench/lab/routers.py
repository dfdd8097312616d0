"""The routers under test and the processes each one runs: fleet, gateway Envoy, maybe an EPP.

Every router sits behind one Envoy (2 workers, no access log, plaintext) on the same fleet
process (`bench.lab.fleet`), so the request path differs only where the routers differ:

* `round-robin`, `least-request`: Envoy alone, a STATIC cluster over the pods with that
  `lb_policy`: what a Kubernetes Service (kube-proxy) or a plain Envoy/Gateway gives users;
* `igw`, `igw-no-prefix`, `igw-affinity`: Envoy's ext_proc filter calls `igw-epp` (plaintext,
  `--endpoints-file` listing the pods, 50 ms metric scrapes, lean response mode as our charts
  run it) and routes on its `x-gateway-destination-endpoint` through an ORIGINAL_DST cluster.
  `igw` runs upstream's default profile (no `--config-*`: queue 2, KV-utilisation 2, prefix 3);
  the variants are EndpointPickerConfig YAML given with `--config-text` (below);
  `igw-learned` runs the `learned-latency` profile igw ships (`--config-profile`);
  `igw-2workers` is `igw` with `--workers 2` (docs/concepts/workers.md), Envoy capping the
  streams per ext_proc connection, at a time and in all, so that both workers get connections
  (`bench._epp_workers.spread_streams`);
* `omniscient`: the same filter and ORIGINAL_DST cluster, the processor being the picker in
  the fleet's own process, which reads the engines' true state (see `bench.lab.fleet`).

`Stack` starts them in order (fleet, then the EPP, then Envoy, each ready before the next) and
stops them in reverse; a new `Stack` per (workload, router) gives every router cold caches.
Ports are picked free just before use; `started` tries again with new ones when a start fails
(another process on the machine took a port in between).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from bench._epp_workers import spread_streams
from igw.common.testing import (
    EnvoyProcess,
    ExtProcFilter,
    OriginalDstCluster,
    StaticCluster,
    free_port,
    gateway_bootstrap,
)
from igw.e2e.processes import ChildProcess

ENVOY_WORKERS = 2
START_ATTEMPTS = 3
NO_PREFIX_CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: metrics-data-source
- type: core-metrics-extractor
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
"""
AFFINITY_CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: prefix-cache-affinity-filter
- type: queue-scorer
- type: metrics-data-source
- type: core-metrics-extractor
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: prefix-cache-affinity-filter}
  - {pluginRef: queue-scorer, weight: 1}
"""


@dataclass(frozen=True, slots=True)
class Router:
    name: str
    kind: Literal["envoy", "epp", "omniscient"]
    description: str
    lb_policy: str = "ROUND_ROBIN"
    epp_config: str | None = None
    epp_profile: str | None = None
    epp_workers: int = 1


ROUTERS: dict[str, Router] = {
    r.name: r
    for r in (
        Router("round-robin", "envoy", "Envoy ROUND_ROBIN (a Kubernetes Service)"),
        Router("least-request", "envoy", "Envoy LEAST_REQUEST", lb_policy="LEAST_REQUEST"),
        Router("igw", "epp", "igw EPP, upstream's default profile"),
        Router(
            "igw-no-prefix", "epp", "igw EPP, queue + KV scorers only", epp_config=NO_PREFIX_CONFIG
        ),
        Router(
            "igw-affinity",
            "epp",
            "igw EPP, prefix-affinity filter + queue scorer",
            epp_config=AFFINITY_CONFIG,
        ),
        Router(
            "igw-learned",
            "epp",
            "igw EPP, the `learned-latency` profile (`--config-profile learned-latency`)",
            epp_profile="learned-latency",
        ),
        Router(
            "igw-2workers",
            "epp",
            "igw EPP, upstream's default profile, `--workers 2`",
            epp_workers=2,
        ),
        Router("omniscient", "omniscient", "in-harness picker reading the engines' true state"),
    )
}


def lean_filter(name: str, port: int) -> ExtProcFilter:
    """The EPP's filter as our charts configure it (lean response mode, README)."""
    return ExtProcFilter(
        name,
        port,
        tls=False,
        response_header_mode="SEND",
        response_body_mode="STREAMED",
        response_trailer_mode="SKIP",
    )


class Stack:
    """The processes of one (workload, router) run; see the module docstring."""

    def __init__(self, router: Router, sim_yaml: str, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.router = router
        self.workdir = workdir
        (workdir / "sim.yaml").write_text(sim_yaml)
        self.extproc_port, self.control_port = free_port(), free_port()
        self.listen_port = 0  # chosen once the fleet's pods hold their own ports
        self.fleet = ChildProcess(
            "fleet",
            [
                sys.executable,
                "-m",
                "bench.lab.fleet",
                "--config",
                str(workdir / "sim.yaml"),
                "--extproc-port",
                str(self.extproc_port),
                "--control-port",
                str(self.control_port),
            ],
            workdir / "fleet.log",
        )
        self.epp: ChildProcess | None = None
        self.workers = workdir / "epp-workers"
        """`igw-epp --workers`' ready files, each naming a worker's PID (`pids`)."""
        self.epp_port = 0
        self.envoy: EnvoyProcess | None = None
        self.pods: list[tuple[str, int]] = []
        self._stack = contextlib.ExitStack()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listen_port}/v1/chat/completions"

    @property
    def state_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}/state"

    def __enter__(self) -> Self:
        with contextlib.ExitStack() as stack:
            stack.callback(self.fleet.stop)
            self.fleet.start(ready_port=self.control_port, timeout_s=60)
            with urllib.request.urlopen(self.state_url, timeout=10) as answer:  # noqa: S310
                state = json.load(answer)
            self.pods = [(p["pod"], p["port"]) for p in state["pods"]]
            # Only now: the pods bind port 0, and the OS may hand them a port picked earlier.
            self.listen_port, self.epp_port = free_port(), free_port()
            if self.router.kind == "epp":
                self.epp = self._epp()
                stack.callback(self.epp.stop)
                self.epp.start(ready_port=self.epp_port, timeout_s=60)
            self.envoy = EnvoyProcess(
                self.envoy_config(), concurrency=ENVOY_WORKERS, workdir=self.workdir
            )
            stack.callback(self.envoy.stop)
            self.envoy.start()
            if self.epp is not None:
                time.sleep(1.0)  # the EPP's first scrapes, so that every endpoint is fresh
            self._stack = stack.pop_all()
        return self

    @classmethod
    @contextlib.contextmanager
    def started(cls, router: Router, sim_yaml: str, workdir: Path) -> Iterator[Stack]:
        """A running stack after at most `START_ATTEMPTS` tries; stopped on leaving."""
        for attempt in range(1, START_ATTEMPTS + 1):
            stack = cls(router, sim_yaml, workdir / f"attempt-{attempt}")
            try:
                stack.__enter__()
            except (RuntimeError, OSError) as e:  # a child died or never served; EnvoyError
                first = str(e).splitlines()[0]
                print(f"  start attempt {attempt} failed: {first}", file=sys.stderr, flush=True)
                if attempt == START_ATTEMPTS:
                    raise
                continue
            try:
                yield stack
            finally:
                stack.__exit__(None, None, None)
            return

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stack.close()

    def _epp(self) -> ChildProcess:
        endpoints = self.workdir / "endpoints.yaml"
        endpoints.write_text(
            "endpoints:\n"
            + "".join(f"  - {{name: {n}, address: 127.0.0.1, port: {p}}}\n" for n, p in self.pods)
        )
        argv = [
            str(Path(sys.executable).parent / "igw-epp"),
            "--grpc-port",
            str(self.epp_port),
            "--grpc-health-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--host",
            "127.0.0.1",
            "--endpoints-file",
            str(endpoints),
            "--secure-serving=false",
            "--tracing=false",
            "--metrics-endpoint-auth=false",
            "-v",
            "1",
            "--zap-encoder=console",
        ]
        if self.router.epp_config is not None:
            argv += ["--config-text", self.router.epp_config]
        if self.router.epp_profile is not None:
            argv += ["--config-profile", self.router.epp_profile]
        if self.router.epp_workers > 1:
            argv += ["--workers", str(self.router.epp_workers), "--worker-dir", str(self.workers)]
        return ChildProcess("epp", argv, self.workdir / "epp.log")

    def envoy_config(self) -> dict[str, Any]:
        router = self.router
        if router.kind == "envoy":
            endpoints = tuple(("127.0.0.1", port) for _, port in self.pods)
            config = gateway_bootstrap(
                listen_port=self.listen_port,
                admin_port=free_port(),
                ext_procs=[],
                routes=(),
                clusters=[StaticCluster("pool", endpoints)],
                default_cluster="pool",
                access_log=False,
            )
            for cluster in config["static_resources"]["clusters"]:
                if cluster["name"] == "pool":
                    cluster["lb_policy"] = router.lb_policy
            return config
        port = self.epp_port if router.kind == "epp" else self.extproc_port
        ext_proc = (
            lean_filter("epp", port)
            if router.kind == "epp"
            else ExtProcFilter("omniscient", port, tls=False)
        )
        if router.epp_workers > 1:
            ext_proc = spread_streams(ext_proc)
        return gateway_bootstrap(
            listen_port=self.listen_port,
            admin_port=free_port(),
            ext_procs=[ext_proc],
            routes=(),
            clusters=[OriginalDstCluster("pool")],
            default_cluster="pool",
            access_log=False,
        )

    def pids(self) -> dict[str, int]:
        """Process -> PID, for the CPU accounting of each run."""
        out: dict[str, int] = {}
        for name, child in (("fleet", self.fleet), ("epp", self.epp)):
            if child is not None and child.process is not None:
                out[name] = child.process.pid
        if self.envoy is not None and self.envoy.pid is not None:
            out["envoy"] = self.envoy.pid
        for index in range(self.router.epp_workers if self.epp is not None else 0):
            ready = self.workers / f"w{index}.json"
            if ready.exists():  # with --workers: the EPP's CPU is its workers' ("epp-w<i>")
                out[f"epp-w{index}"] = json.loads(ready.read_text())["pid"]
        return out

    def log_tails(self) -> str:
        parts = [f"--- fleet\n{self.fleet.log_tail(15)}"]
        if self.epp is not None:
            parts.append(f"--- epp\n{self.epp.log_tail(15)}")
        if self.envoy is not None:
            parts.append(f"--- envoy\n{self.envoy.log_tail(15)}")
        return "\n".join(parts)
