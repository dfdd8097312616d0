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

Ownership: `LocalGateway` owns the Envoy process and one `Supervised` per service (simulator,
EPP, BBR), which owns that service's process; `start()` forks the three together and starts
Envoy once all three serve (nothing is exposed before the chain behind it serves), then watches
them: a child that exits unexpectedly is restarted with back-off (`igw.e2e.supervisor`), and
`restart("epp" | "bbr")` replaces one without failing a request. For that, each ext_proc cluster
lists two ports per service, slots a and b, health-checked by Envoy (`igw.e2e._envoy_slots`);
the BBR and the EPP run with `--health-checking` and a 3 s `--shutdown-delay`. `stop()` ends the
watches, stops Envoy first (no new traffic), then the EPP, the BBR and the pool. The logs in the
work directory are bounded (`igw.e2e.logs`: each rotated past 64 MiB).
"""

from __future__ import annotations

import asyncio
import dataclasses
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
from igw.e2e import _envoy_slots, failover, logs, pool, readiness
from igw.e2e.ports import GatewayPorts, check_free
from igw.e2e.processes import ChildProcess
from igw.e2e.supervisor import Slot, Supervised

__all__ = ["RESPONSE_MODE", "SHUTDOWN_DELAY", "GatewayPorts", "LocalGateway", "ResponseMode"]

MODEL_HEADER = "x-gateway-model-name"
BASE_MODEL_HEADER = "x-gateway-base-model-name"
SUBSET_NAMESPACE = "envoy.lb.subset_hint"
LB_NAMESPACE = "envoy.lb"
POOL_CLUSTER = "pool"

SHUTDOWN_DELAY = "3s"
"""The BBR's and EPP's `--shutdown-delay`: six of Envoy's health-check intervals."""

ResponseMode = typing.Literal["compatible", "lean"]
RESPONSE_MODE: ResponseMode = "lean"
"""How the EPP's filter sees responses: "compatible" is upstream's (full duplex both ways);
"lean" (the default here, as in our charts) streams the response side in STREAMED mode so the EPP
reads a body only when it needs it (README: "EPP response modes")."""


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
        failure_mode: failover.FailureMode = "FailClose",
    ) -> None:
        """`epp_config` is an EndpointPickerConfig file for the EPP's `--config-file`,
        `objectives` its `--objective NAME=PRIORITY` table, `sim_options` simulator options for
        every pod (`pool.read_sim_options`), `response_mode` how the EPP sees responses,
        `failure_mode` what Envoy does when the BBR or the EPP is gone (`igw.e2e.failover`)."""
        self.ports = ports
        self.workdir = workdir
        self.otlp_endpoint = otlp_endpoint
        self.epp_config = epp_config
        self.objectives = dict(objectives or {})
        self.sim_options = dict(sim_options or {})
        self.response_mode = response_mode
        self.failure_mode = failure_mode
        sim_slot = Slot("a", ports.sim_ports[-1], ports.sim_ports[-1], ports.sim_ports[0])
        self.services = {
            "sim": Supervised("igw-sim", [sim_slot], self._sim_child, self._sim_ready),
            "epp": Supervised("igw-epp", ports.epp_slots, self._epp_child, self._epp_ready),
            "bbr": Supervised("igw-bbr", ports.bbr_slots, self._bbr_child, self._bbr_ready),
        }
        self.envoy: EnvoyProcess | None = None
        self._watches: list[asyncio.Task[None]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.listen}"

    @property
    def sim(self) -> ChildProcess:
        return self._current("sim")

    @property
    def epp(self) -> ChildProcess:
        return self._current("epp")

    @property
    def bbr(self) -> ChildProcess:
        return self._current("bbr")

    def _current(self, service: str) -> ChildProcess:
        """The service's current process (its first, before `start()`)."""
        unit = self.services[service]
        return unit.make(unit.slot) if unit.child is None else unit.child

    @property
    def children(self) -> tuple[ChildProcess, ...]:
        return (self.sim, self.epp, self.bbr)

    def _sim_child(self, _slot: Slot) -> ChildProcess:
        return ChildProcess("igw-sim", self._sim_argv(), self.workdir / "sim.log")

    def _epp_child(self, slot: Slot) -> ChildProcess:
        return ChildProcess("igw-epp", self._epp_argv(slot), self.workdir / "epp.log")

    def _bbr_child(self, slot: Slot) -> ChildProcess:
        return ChildProcess("igw-bbr", self._bbr_argv(slot), self.workdir / "bbr.log")

    async def _sim_ready(self, child: ChildProcess, slot: Slot) -> None:
        await readiness.port_listening(child, slot.grpc)

    async def _epp_ready(self, child: ChildProcess, slot: Slot) -> None:
        await self._ext_proc_ready("epp", child, slot)

    async def _bbr_ready(self, child: ChildProcess, slot: Slot) -> None:
        await self._ext_proc_ready("bbr", child, slot)

    async def _ext_proc_ready(self, name: str, child: ChildProcess, slot: Slot) -> None:
        """gRPC health SERVING, then (once Envoy runs) Envoy's own check passed."""
        await readiness.grpc_serving(child, slot.health)
        if self.envoy is not None:
            await readiness.envoy_host_health(self.envoy, f"ext_proc_{name}", slot.grpc)

    def _sim_argv(self) -> list[str]:
        return [sys.executable, "-m", "igw.sim.cli", f"--config={self.workdir / 'sim.yaml'}"]

    def _epp_argv(self, slot: Slot) -> list[str]:
        return [
            sys.executable, "-m", "igw.epp.cli",
            f"--grpc-port={slot.grpc}", f"--grpc-health-port={slot.health}",
            f"--metrics-port={slot.metrics}", "--host=127.0.0.1",
            "--health-checking", f"--shutdown-delay={SHUTDOWN_DELAY}",
            f"--endpoints-file={self.workdir / 'endpoints.yaml'}", "--zap-encoder=console",
            "--metrics-endpoint-auth=false",  # no cluster to ask about scrapers' tokens
            *([f"--config-file={self.epp_config.resolve()}"] if self.epp_config else []),
            *(f"--objective={name}={priority}" for name, priority in self.objectives.items()),
        ]  # fmt: skip

    def _bbr_argv(self, slot: Slot) -> list[str]:
        return [
            sys.executable, "-m", "igw.bbr.cli",
            f"--grpc-port={slot.grpc}", f"--grpc-health-port={slot.health}",
            f"--metrics-port={slot.metrics}", "--host=127.0.0.1",
            "--health-checking", f"--shutdown-delay={SHUTDOWN_DELAY}",
            "--streaming", f"--adapters-file={self.workdir / 'adapters.yaml'}",
            "--kubernetes=off", "--metrics-endpoint-auth=false", "--zap-encoder=console",
        ]  # fmt: skip

    def envoy_config(self) -> dict[str, object]:
        p = self.ports
        tracing = None
        if self.otlp_endpoint:
            port = urlparse(self.otlp_endpoint).port or 4317
            tracing = OtelTracing(port=port, service_name="igw-gateway")
        filters, routes, cluster = failover.apply(
            self.failure_mode,
            [
                ExtProcFilter(name="bbr", port=p.bbr_grpc, tls=True),
                LuaFilter("adapter-subset", pool.adapter_subset_lua(MODEL_HEADER)),
                _epp_filter(p.epp_grpc, self.response_mode),
            ],
            # The BBR names an adapter's base model in its own header, so both routes reach the
            # pool; any other model matches nothing and gets Envoy's 404.
            [
                HeaderRoute(MODEL_HEADER, pool.BASE_MODEL, POOL_CLUSTER),
                HeaderRoute(BASE_MODEL_HEADER, pool.BASE_MODEL, POOL_CLUSTER),
            ],
            OriginalDstCluster(POOL_CLUSTER),
            first_port=p.sim_first,
            model_header=MODEL_HEADER,
        )
        config = gateway_bootstrap(
            listen_port=p.listen,
            admin_port=p.admin,
            ext_procs=filters,
            routes=routes,
            clusters=[cluster],
            default_cluster=None,
            tracing=tracing,
            served_endpoint_metadata=True,
        )
        for name, slots in (("epp", p.epp_slots), ("bbr", p.bbr_slots)):
            _envoy_slots.health_checked_slots(config, f"ext_proc_{name}", [s.grpc for s in slots])
        return config

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
        check_free(self.ports)
        try:
            for unit in self.services.values():
                unit.spawn()  # all at once: each takes a second or two to import and bind
            for unit in self.services.values():
                await unit.wait_ready()
            envoy = EnvoyProcess(self.envoy_config(), workdir=self.workdir)
            self.envoy = envoy
            await envoy.start_async()
            for unit in (self.services["epp"], self.services["bbr"]):
                await unit.wait_ready()  # Envoy's first health check passed
            self._watches = [asyncio.create_task(u.watch()) for u in self.services.values()]
            self._watches.append(asyncio.create_task(logs.keep_rotated(self._log_paths)))
        except BaseException:
            await self.stop()
            raise

    def _log_paths(self) -> list[Path]:
        envoy = [self.envoy.log_path] if self.envoy is not None else []
        return [*envoy, *(self.workdir / f"{name}.log" for name in self.services)]

    async def restart(self, service: str) -> str:
        """Rolling restart of "epp" or "bbr" (`Supervised.roll`); returns what happened."""
        if service not in ("epp", "bbr"):
            raise ValueError(f"only epp and bbr have rolling restarts, not {service!r}")
        return await self.services[service].roll()

    def status(self) -> str:
        """One line per service: state, pid, slot, uptime and restarts (`igw-local status`)."""
        return "\n".join(unit.status() for unit in self.services.values())

    async def stop(self) -> None:
        for task in self._watches:
            task.cancel()
        await asyncio.gather(*self._watches, return_exceptions=True)
        self._watches = []
        if self.envoy is not None:
            await self.envoy.stop_async()
            self.envoy = None
        for name in ("epp", "bbr", "sim"):
            await self.services[name].stop()


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
