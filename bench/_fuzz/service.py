"""The service under fuzz: a real `igw-bbr` or `igw-epp` process, and what can be read from it.

Started from its real command line, plaintext, every port 0: the bound ports are read back from
the process's own JSON log lines (`serving`, `metrics_serving`), so no port is picked free and
bound later (issue 13 item 6). The EPP gets two fake model servers (`igw.epp.testing.
metrics_server`, another process, serving vLLM's metrics page) from `--endpoints-file`, and a
configuration with the `inflight-load-producer`, so its in-flight counts can be read back over
the admin API on the health port.

What the oracle reads: gRPC health (`Check("")`), the process's RSS from /proc, its open file
descriptors, the services' open-request gauges from /metrics (the EPP's
`inference_objective_running_requests` and flow-control queue; the BBR exports none) and the
EPP's in-flight counts. The processes die with this one (PDEATHSIG) and `close()` stops them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Literal

import grpc
from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families

from igw.common import deathsig
from igw.e2e.processes import ChildProcess
from igw.epp.admin import AdminClient

__all__ = ["OPEN_GAUGES", "Service", "ServiceName"]

ServiceName = Literal["bbr", "epp"]
_BIN = Path(sys.executable).parent
START_TIMEOUT_S = 60.0
OPEN_GAUGES: dict[str, tuple[str, ...]] = {
    "bbr": (),
    "epp": ("inference_objective_running_requests", "inference_extension_flow_control_queue_size"),
}
_EPP_CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: inflight-load-producer
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
  - pluginRef: prefix-cache-scorer
"""
_COMMON_FLAGS = (
    "--grpc-port=0", "--grpc-health-port=0", "--metrics-port=0", "--host=127.0.0.1",
    "--secure-serving=false", "--metrics-endpoint-auth=false", "--tracing=false",
    "--zap-encoder=json",
)  # fmt: skip


class Service:
    """One running service; build with `Service.start(name, workdir)`."""

    def __init__(self, name: ServiceName, child: ChildProcess, ports: dict[str, int]) -> None:
        self.name = name
        self.child = child
        self.grpc_port = ports["grpc_port"]
        self.health_port = ports["health_port"]
        self.metrics_port = ports["port"]
        self.helpers: list[subprocess.Popen[bytes]] = []

    @classmethod
    def start(cls, name: ServiceName, workdir: Path) -> Service:
        workdir.mkdir(parents=True, exist_ok=True)
        helpers: list[subprocess.Popen[bytes]] = []
        if name == "bbr":
            argv = [str(_BIN / "igw-bbr"), *_COMMON_FLAGS, "--kubernetes=off"]
        else:
            model_servers, ports = _fake_model_servers()
            helpers.append(model_servers)
            endpoints = workdir / "endpoints.yaml"
            endpoints.write_text(
                "endpoints:\n"
                + "".join(f"  - {{name: pod-{i}, address: 127.0.0.1, port: {p}}}\n"
                          for i, p in enumerate(ports))
            )  # fmt: skip
            argv = [str(_BIN / "igw-epp"), *_COMMON_FLAGS, f"--endpoints-file={endpoints}",
                    f"--config-text={_EPP_CONFIG}"]  # fmt: skip
        child = ChildProcess(name, argv, workdir / f"{name}.log")
        child.log_path.unlink(missing_ok=True)
        child.spawn()
        try:
            service = cls(name, child, _ports_from_log(child))
        except BaseException:
            child.stop()
            for helper in helpers:
                helper.kill()
            raise
        service.helpers = helpers
        return service

    @property
    def pid(self) -> int:
        process = self.child.process
        if process is None:
            raise RuntimeError(f"{self.name} was never started")
        return process.pid

    def alive(self) -> bool:
        process = self.child.process
        return process is not None and process.poll() is None

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS in /proc status")

    def open_fds(self) -> int:
        return sum(1 for _ in Path(f"/proc/{self.pid}/fd").iterdir())

    async def serving(self) -> bool:
        """gRPC health for service "" (what a load balancer's check asks), as SERVING."""
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.health_port}") as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            answer = await check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    async def open_requests(self) -> dict[str, float]:
        """Every open-request figure the service exports, by name (see the module docstring)."""
        text = await asyncio.to_thread(self._metrics_text)
        wanted = OPEN_GAUGES[self.name]
        figures = dict.fromkeys(wanted, 0.0)
        for family in text_string_to_metric_families(text):
            if family.name in wanted:
                figures[family.name] = sum(sample.value for sample in family.samples)
        if self.name == "epp":
            async with grpc.aio.insecure_channel(f"127.0.0.1:{self.health_port}") as channel:
                inventory = await AdminClient(channel).list_endpoints()
            figures["epp_in_flight"] = float(
                sum(report.in_flight.requests for report in inventory.endpoints)
            )
        return figures

    def _metrics_text(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            return str(answer.read().decode())

    def logged_exceptions(self) -> Counter[str]:
        """The servicer's `ext_proc stream failed` records, by where and what was raised."""
        found: Counter[str] = Counter()
        for line in self.child.log_path.read_text(errors="replace").splitlines():
            if '"ext_proc stream failed"' not in line:
                continue
            with contextlib.suppress(ValueError):
                found[_exception_key(json.loads(line).get("exception", ""))] += 1
        return found

    def log_tail(self, lines: int = 40) -> str:
        return self.child.log_tail(lines)

    def close(self) -> None:
        self.child.stop()
        for helper in self.helpers:
            helper.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                helper.wait(timeout=10)
            if helper.stdout is not None:
                helper.stdout.close()


def _exception_key(traceback: str) -> str:
    """`Type at file:line in function` of a logged traceback (its message varies per case)."""
    frames = traceback.strip().splitlines()
    last = next((f.strip() for f in reversed(frames) if f.strip().startswith("File ")), "")
    match = re.match(r'File "(?:.*/src/)?([^"]+)", line (\d+), in (\S+)', last)
    where = f"{match[1]}:{match[2]} in {match[3]}" if match else last
    return f"{frames[-1].split(':')[0] if frames else '?'} at {where}"


def _ports_from_log(child: ChildProcess) -> dict[str, int]:
    """The bound ports from the `serving` and `metrics_serving` log lines (JSON)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    ports: dict[str, int] = {}
    while time.monotonic() < deadline:
        process = child.process
        if process is None or process.poll() is not None:
            raise RuntimeError(f"{child.name} exited during start-up\n{child.log_tail()}")
        if child.log_path.exists():
            for line in child.log_path.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("event") in ("serving", "metrics_serving"):
                        ports.update({k: v for k, v in record.items() if k.endswith("port")})
        if {"grpc_port", "health_port", "port"} <= ports.keys():
            return ports
        time.sleep(0.1)
    raise RuntimeError(
        f"{child.name} logged no ports in {START_TIMEOUT_S:.0f} s\n{child.log_tail()}"
    )


def _fake_model_servers(count: int = 2) -> tuple[subprocess.Popen[bytes], list[int]]:
    """vLLM metrics pages on `count` OS-chosen ports, in another process; the ports it printed."""
    argv = [sys.executable, "-m", "igw.epp.testing.metrics_server", "--count", str(count)]
    process = subprocess.Popen(
        deathsig.wrap(argv), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    stdout = process.stdout
    if stdout is None:
        raise RuntimeError("no stdout")
    line = stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError("the fake model servers printed no ports")
    ports: list[int] = json.loads(line)["ports"]
    return process, ports
