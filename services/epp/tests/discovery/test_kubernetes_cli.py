"""Issue 10's acceptance, from outside: `igw-epp --pool-name P --pool-namespace NS
--secure-serving=false` as its own process, `KUBECONFIG` pointing at an API server (our fake,
over real HTTP) that holds the pool and its pods; `igw-epp endpoints` lists what it serves."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from igw.common.testing.kube_api import FakeKubeApi
from igw.epp.testing.kube_objects import inference_pool, pod

NS = "serving"
SELECTOR = {"app": "vllm"}
SETTLE_S = 60.0
BIN = Path(sys.executable).parent / "igw-epp"


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + SETTLE_S
    while not await condition():
        assert time.monotonic() < deadline, f"not within {SETTLE_S} s: {what}"
        await asyncio.sleep(0.1)


class EppProcess:
    """`igw-epp` on ports the system picks, read back from its JSON log."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.health_port = 0
        self.lines: list[str] = []

    async def wait_serving(self) -> None:
        assert self.process.stderr is not None
        while not self.health_port:
            line = await asyncio.wait_for(self.process.stderr.readline(), SETTLE_S)
            assert line, "igw-epp ended before serving:\n" + "".join(self.lines)
            self.lines.append(line.decode())
            event = _json(line)
            if event.get("event") == "serving":
                self.health_port = int(event["health_port"])
        asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.lines.append(line.decode())

    async def endpoints(self) -> str:
        """What `igw-epp endpoints` prints for this EPP."""
        admin = await asyncio.create_subprocess_exec(
            str(BIN), "endpoints", "--admin-address", f"127.0.0.1:{self.health_port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(admin.communicate(), SETTLE_S)
        assert admin.returncode == 0, err.decode()
        return out.decode()

    async def health(self) -> int:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.health_port}") as channel:
            check = channel.unary_unary(
                "/grpc.health.v1.Health/Check",
                request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                response_deserializer=health_pb2.HealthCheckResponse.FromString,
            )
            answer = await check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            return int(answer.status)


def _json(line: bytes) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except ValueError:
        return {}
    return event if isinstance(event, dict) else {}


@pytest.fixture
async def epp(tmp_path: Path) -> AsyncIterator[tuple[FakeKubeApi, EppProcess]]:
    async with FakeKubeApi() as api:
        api.put(inference_pool("llama", SELECTOR, [8000, 8001], namespace=NS))
        api.put(pod("vllm-0", "10.0.0.1", SELECTOR, namespace=NS))
        api.put(pod("vllm-1", "10.0.0.2", SELECTOR, namespace=NS))
        api.put(pod("vllm-2", "10.0.0.3", SELECTOR, namespace=NS, ready=False))
        api.put(pod("other-0", "10.0.0.4", {"app": "other"}, namespace=NS))
        env = {**os.environ, "KUBECONFIG": str(api.kubeconfig(tmp_path / "kubeconfig"))}
        process = await asyncio.create_subprocess_exec(
            str(BIN), "--pool-name", "llama", "--pool-namespace", NS, "--secure-serving=false",
            "--grpc-port=0", "--grpc-health-port=0", "--metrics-port=0", "--host=127.0.0.1",
            "--tracing=false", "--zap-encoder=json",
            env=env, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        running = EppProcess(process)
        try:
            await running.wait_serving()
            yield api, running
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), SETTLE_S)


async def test_igw_epp_serves_the_pool_s_ready_pods_and_follows_them(
    epp: tuple[FakeKubeApi, EppProcess],
) -> None:
    api, process = epp

    async def listed(*names: str) -> bool:
        table = await process.endpoints()
        present = {name for name in ("vllm-0", "vllm-1", "vllm-2", "other-0") if name in table}
        return present == set(names)

    await eventually(lambda: listed("vllm-0", "vllm-1"), "the ready matching pods listed")
    table = await process.endpoints()
    for rank in ("vllm-0-rank-0", "vllm-0-rank-1", "vllm-1-rank-0", "vllm-1-rank-1"):
        assert rank in table
    assert await process.health() == health_pb2.HealthCheckResponse.SERVING

    api.put(pod("vllm-0", "10.0.0.1", SELECTOR, namespace=NS, ready=False))
    await eventually(lambda: listed("vllm-1"), "an un-readied pod removed")
    api.delete("v1", "Pod", "vllm-1", NS)
    await eventually(listed, "a deleted pod removed")

    api.delete("inference.networking.k8s.io/v1", "InferencePool", "llama", NS)

    async def not_serving() -> bool:
        return await process.health() == health_pb2.HealthCheckResponse.NOT_SERVING

    await eventually(not_serving, "NOT_SERVING once the pool is deleted")
