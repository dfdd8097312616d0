"""The local inference gateway behind `make run`: a real Envoy with the BBR chained in front.

    client ──HTTP──> Envoy :8080 ── ext_proc: igw-bbr (:9004, TLS, full duplex)
                        │  route on x-gateway-model-name / x-gateway-base-model-name
                        ├──> backend "a" (:18001)
                        └──> backend "b" (:18002)

Until the endpoint picker and the simulator exist, the backends are small echo servers that
report who served the request and what arrived. The BBR runs as its own process from its real
command line, with a demo adapter file mapping `a-lora-1` and `a-lora-2` to base model `a`, so a
request for an adapter reaches the pool of its base model by the base-model header route.

Ownership: `LocalGateway` owns the echo backends (on the caller's event loop), the BBR child
process and the Envoy process; `stop()` stops Envoy first (no new traffic), then the BBR, then
the backends.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import urlparse

from igw.common.testing.echo import EchoBackend
from igw.common.testing.envoy_config import (
    ExtProcFilter,
    HeaderRoute,
    OtelTracing,
    StaticCluster,
    gateway_bootstrap,
)
from igw.common.testing.envoy_process import EnvoyProcess
from igw.e2e.processes import ChildProcess

__all__ = ["DEMO_ADAPTERS", "GatewayPorts", "LocalGateway"]

MODEL_HEADER = "x-gateway-model-name"
BASE_MODEL_HEADER = "x-gateway-base-model-name"
BACKENDS = ("a", "b")
DEMO_ADAPTERS = """\
# LoRA adapters and the base model they run on (same data as a bbr-managed ConfigMap).
baseModels:
  - baseModel: a
    adapters: [a-lora-1, a-lora-2]
  - baseModel: b
"""


@dataclass(frozen=True, slots=True)
class GatewayPorts:
    listen: int = 8080
    admin: int = 9901
    bbr_grpc: int = 9004
    bbr_health: int = 9005
    bbr_metrics: int = 9091
    backend_a: int = 18001
    backend_b: int = 18002

    @classmethod
    def from_env(cls) -> GatewayPorts:
        """Defaults, with the listener on `IGW_PORT` when it is set."""
        port = os.environ.get("IGW_PORT")
        return cls(listen=int(port)) if port else cls()

    @classmethod
    def free(cls) -> GatewayPorts:
        """Every port freshly picked by the kernel (for tests running side by side)."""
        socks = [socket.socket() for _ in fields(cls)]
        try:
            for sock in socks:
                sock.bind(("127.0.0.1", 0))
            return cls(*(sock.getsockname()[1] for sock in socks))
        finally:
            for sock in socks:
                sock.close()


class LocalGateway:
    """Starts and stops the whole local gateway; see the module docstring."""

    def __init__(
        self, ports: GatewayPorts, workdir: Path, *, otlp_endpoint: str | None = None
    ) -> None:
        self.ports = ports
        self.workdir = workdir
        self.otlp_endpoint = otlp_endpoint
        self.backends = {
            "a": EchoBackend("a", ports.backend_a),
            "b": EchoBackend("b", ports.backend_b),
        }
        self.adapters_file = workdir / "adapters.yaml"
        self.bbr = ChildProcess("igw-bbr", self._bbr_argv(), workdir / "bbr.log")
        self.envoy: EnvoyProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports.listen}"

    def _bbr_argv(self) -> list[str]:
        p = self.ports
        return [
            sys.executable, "-m", "igw.bbr.cli",
            f"--grpc-port={p.bbr_grpc}", f"--grpc-health-port={p.bbr_health}",
            f"--metrics-port={p.bbr_metrics}", "--host=127.0.0.1",
            "--streaming", f"--adapters-file={self.adapters_file}", "--kubernetes=off",
            "--zap-encoder=console",
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
            ext_procs=[ExtProcFilter(name="bbr", port=p.bbr_grpc, tls=True)],
            routes=[
                HeaderRoute(MODEL_HEADER, "a", "backend-a"),
                HeaderRoute(MODEL_HEADER, "b", "backend-b"),
                HeaderRoute(BASE_MODEL_HEADER, "a", "backend-a"),
                HeaderRoute(BASE_MODEL_HEADER, "b", "backend-b"),
            ],
            clusters=[
                StaticCluster("backend-a", (("127.0.0.1", p.backend_a),)),
                StaticCluster("backend-b", (("127.0.0.1", p.backend_b),)),
            ],
            default_cluster=None,
            tracing=tracing,
        )

    async def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.adapters_file.exists():
            self.adapters_file.write_text(DEMO_ADAPTERS)
        try:
            for backend in self.backends.values():
                await backend.start()
            self.bbr.start(ready_port=self.ports.bbr_grpc)
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
        self.bbr.stop()
        for backend in self.backends.values():
            await backend.stop()
