"""The local inference gateway behind `make run`: Envoy, the BBR, the EPP and a simulated pool.

    client ──HTTP──> Envoy :8080
       ext_proc igw-bbr (:9004, TLS)   body model -> x-gateway-model-name (+ base-model header);
                                        GET /v1/models[/{id}]: answered here, OpenAI's shape,
                                        the base model and its adapter (igw.bbr.models)
       lua                              adapter requests get a subset hint (see igw.e2e.pool)
       ext_proc igw-epp (:9002, TLS)   picks the pod: x-gateway-destination-endpoint
       route on the model headers ──> ORIGINAL_DST "pool" ──> igw-sim pods (:8000-8003)
                                       any other model ──> 404 from Envoy
       (response path: a Lua filter before the router reports the pod that served each response
        to the EPP as envoy.lb/x-gateway-destination-endpoint-served, GIE protocol §1.6)

Every service runs as its own process from its real command line (`ChildProcess`), and inherits
this process's environment: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, Envoy's OpenTelemetry tracer
is on and the BBR, EPP and simulator export their spans to the same collector.

The EPP's response side uses the lean mode (response bodies STREAMED, read only when needed);
`RESPONSE_MODE` is the default (`LocalGateway(response_mode=...)`, `igw-local run
--response-mode`), "compatible" gives upstream's full-duplex config.

Ownership: `LocalGateway` owns the three child processes and the Envoy process; `start()` forks
the simulator, EPP and BBR together and starts Envoy once all three listen (nothing is exposed
before the chain behind it serves); `stop()` stops Envoy first (no new traffic), then the EPP,
the BBR and the pool.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

from igw.common.testing.envoy_config import (
    ExtProcFilter,
    HeaderRoute,
    LuaFilter,
    OriginalDstCluster,
    OtelTracing,
    gateway_bootstrap,
)
from igw.common.testing.envoy_process import EnvoyProcess
from igw.e2e import pool
from igw.e2e.processes import ChildProcess

__all__ = ["RESPONSE_MODE", "GatewayPorts", "LocalGateway", "ResponseMode"]

MODEL_HEADER = "x-gateway-model-name"
BASE_MODEL_HEADER = "x-gateway-base-model-name"
SUBSET_NAMESPACE = "envoy.lb.subset_hint"
LB_NAMESPACE = "envoy.lb"
POOL_CLUSTER = "pool"

ResponseMode = typing.Literal["compatible", "lean"]
RESPONSE_MODE: ResponseMode = "lean"
"""How the EPP's filter sees responses: "compatible" is upstream's (full duplex both ways);
"lean" (the default here, as in our charts) streams the response side in STREAMED mode so the EPP
reads a body only when it needs it (README: "EPP response modes")."""


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayPorts:
    """Where each part listens; the defaults are `make run`'s fixed, documented ports."""

    listen: int = 8080
    admin: int = 9901
    epp_grpc: int = 9002
    epp_health: int = 9003
    epp_metrics: int = 9090
    bbr_grpc: int = 9004
    bbr_health: int = 9005
    bbr_metrics: int = 9091
    sim_first: int = 8000
    """The pool takes `pool.SIM_PORTS` consecutive ports from here."""

    @property
    def sim_ports(self) -> range:
        return range(self.sim_first, self.sim_first + pool.SIM_PORTS)

    @classmethod
    def from_env(cls) -> GatewayPorts:
        """Defaults, with the listener on `IGW_PORT` when it is set."""
        port = os.environ.get("IGW_PORT")
        return cls(listen=int(port)) if port else cls()

    @classmethod
    def free(cls) -> GatewayPorts:
        """Ports picked by the kernel (for tests running side by side), the pool's consecutive."""
        socks = [socket.socket() for _ in range(len(dataclasses.fields(cls)) - 1)]
        try:
            for sock in socks:
                sock.bind(("127.0.0.1", 0))
            singles = [sock.getsockname()[1] for sock in socks]
        finally:
            for sock in socks:
                sock.close()
        first = _free_port_block(pool.SIM_PORTS, avoid=set(singles))
        return dataclasses.replace(cls(*singles), sim_first=first)


def _free_port_block(size: int, avoid: set[int]) -> int:
    """The first of `size` consecutive ports that are free on every address the pool binds."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1])
        block = range(first, first + size)
        if block[-1] < 65536 and not avoid.intersection(block) and all(map(_bindable, block)):
            return first
    raise RuntimeError(f"found no {size} consecutive free ports")


def _bindable(port: int, host: str = "0.0.0.0") -> bool:
    """Whether a server could listen on `port` now (like servers, lingering TIME_WAITs are ok)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _check_free(ports: GatewayPorts) -> None:
    """Raise a clear error when a port is taken (often: another `make run` is still running)."""
    taken = [
        f"{field.name.replace('_', ' ')} :{getattr(ports, field.name)}"
        for field in dataclasses.fields(ports)
        if field.name != "sim_first" and not _bindable(getattr(ports, field.name), "127.0.0.1")
    ]
    taken += [f"simulator :{port}" for port in ports.sim_ports if not _bindable(port)]
    if taken:
        raise RuntimeError(
            f"ports in use: {', '.join(taken)}; is another local gateway running? "
            "(IGW_PORT moves the listener)"
        )


class LocalGateway:
    """Starts and stops the whole local gateway; see the module docstring."""

    def __init__(
        self,
        ports: GatewayPorts,
        workdir: Path,
        *,
        otlp_endpoint: str | None = None,
        epp_config: Path | None = None,
        objectives: Mapping[str, int] | None = None,
        sim_options: Mapping[str, object] | None = None,
        response_mode: ResponseMode = RESPONSE_MODE,
    ) -> None:
        """`epp_config` is an EndpointPickerConfig file for the EPP's `--config-file`,
        `objectives` its `--objective NAME=PRIORITY` table, `sim_options` simulator options for
        every pod (`pool.read_sim_options`), `response_mode` how the EPP sees responses."""
        self.ports = ports
        self.workdir = workdir
        self.otlp_endpoint = otlp_endpoint
        self.epp_config = epp_config
        self.objectives = dict(objectives or {})
        self.sim_options = dict(sim_options or {})
        self.response_mode = response_mode
        self.sim = ChildProcess("igw-sim", self._sim_argv(), workdir / "sim.log")
        self.epp = ChildProcess("igw-epp", self._epp_argv(), workdir / "epp.log")
        self.bbr = ChildProcess("igw-bbr", self._bbr_argv(), workdir / "bbr.log")
        self.envoy: EnvoyProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.listen}"

    @property
    def children(self) -> tuple[ChildProcess, ...]:
        return (self.sim, self.epp, self.bbr)

    def _sim_argv(self) -> list[str]:
        return [sys.executable, "-m", "igw.sim.cli", f"--config={self.workdir / 'sim.yaml'}"]

    def _epp_argv(self) -> list[str]:
        p = self.ports
        return [
            sys.executable, "-m", "igw.epp.cli",
            f"--grpc-port={p.epp_grpc}", f"--grpc-health-port={p.epp_health}",
            f"--metrics-port={p.epp_metrics}", "--host=127.0.0.1",
            f"--endpoints-file={self.workdir / 'endpoints.yaml'}", "--zap-encoder=console",
            "--metrics-endpoint-auth=false",  # no cluster to ask about scrapers' tokens
            *([f"--config-file={self.epp_config.resolve()}"] if self.epp_config else []),
            *(f"--objective={name}={priority}" for name, priority in self.objectives.items()),
        ]  # fmt: skip

    def _bbr_argv(self) -> list[str]:
        p = self.ports
        return [
            sys.executable, "-m", "igw.bbr.cli",
            f"--grpc-port={p.bbr_grpc}", f"--grpc-health-port={p.bbr_health}",
            f"--metrics-port={p.bbr_metrics}", "--host=127.0.0.1",
            "--streaming", f"--adapters-file={self.workdir / 'adapters.yaml'}",
            "--kubernetes=off", "--metrics-endpoint-auth=false", "--zap-encoder=console",
        ]  # fmt: skip

    def envoy_config(self) -> dict[str, object]:
        p = self.ports
        tracing = None
        if self.otlp_endpoint:
            port = urlparse(self.otlp_endpoint).port or 4317
            tracing = OtelTracing(port=port, service_name="igw-gateway")
        return gateway_bootstrap(
            listen_port=p.listen,
            admin_port=p.admin,
            ext_procs=[
                ExtProcFilter(name="bbr", port=p.bbr_grpc, tls=True),
                LuaFilter("adapter-subset", pool.adapter_subset_lua(MODEL_HEADER)),
                _epp_filter(p.epp_grpc, self.response_mode),
            ],
            # The BBR names an adapter's base model in its own header, so both routes reach the
            # pool; any other model matches nothing and gets Envoy's 404.
            routes=[
                HeaderRoute(MODEL_HEADER, pool.BASE_MODEL, POOL_CLUSTER),
                HeaderRoute(BASE_MODEL_HEADER, pool.BASE_MODEL, POOL_CLUSTER),
            ],
            clusters=[OriginalDstCluster(POOL_CLUSTER)],
            default_cluster=None,
            tracing=tracing,
            served_endpoint_metadata=True,
        )

    def _write_files(self) -> None:
        first = self.ports.sim_first
        files = {
            "sim.yaml": pool.sim_yaml(first, self.sim_options),
            "endpoints.yaml": pool.endpoints_yaml(first),
            "adapters.yaml": pool.adapters_yaml(),
        }
        for name, text in files.items():
            (self.workdir / name).write_text(text)

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_files()
        _check_free(self.ports)
        p = self.ports
        ready = ((self.sim, p.sim_ports[-1]), (self.epp, p.epp_grpc), (self.bbr, p.bbr_grpc))
        try:
            for child, _ in ready:
                child.spawn()  # all at once: each takes a second or two to import and bind
            for child, port in ready:
                await asyncio.to_thread(child.wait_ready, port)
            envoy = EnvoyProcess(self.envoy_config(), workdir=self.workdir)
            self.envoy = envoy
            await envoy.start_async()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        if self.envoy is not None:
            await self.envoy.stop_async()
            self.envoy = None
        for child in (self.epp, self.bbr, self.sim):
            await asyncio.to_thread(child.stop)


def _epp_filter(port: int, mode: ResponseMode) -> ExtProcFilter:
    """The EPP's ext_proc filter; its response side follows `mode`."""
    # envoy.lb carries the served-endpoint report back to the EPP (GIE protocol §1.6).
    epp = ExtProcFilter(
        name="epp", port=port, tls=True, forwarding_namespaces=(SUBSET_NAMESPACE, LB_NAMESPACE)
    )
    if mode == "compatible":
        return dataclasses.replace(
            epp,
            response_header_mode="SEND",
            response_body_mode="FULL_DUPLEX_STREAMED",
            response_trailer_mode="SEND",
        )
    if mode == "lean":
        return dataclasses.replace(
            epp,
            response_header_mode="SEND",
            response_body_mode="STREAMED",
            response_trailer_mode="SKIP",
        )
    typing.assert_never(mode)
