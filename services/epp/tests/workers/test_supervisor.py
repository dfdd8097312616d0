"""`igw-epp --workers 2` as users run it: real processes on one port, real gRPC on loopback.

Worker 1 never scrapes, so what its admin API reports comes from worker 0 through the workers'
sockets; a prefix routed by one worker must score on the other; a killed worker comes back;
through a real Envoy (streams capped per connection, as docs/concepts/workers.md says to) both
workers route and no request fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from igw.common.testing import ExtProcFilter, OriginalDstCluster, gateway_bootstrap, messages
from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.admin import AdminClient
from igw.epp.testing.admin_fleet import chat_body
from igw.epp.testing.metrics_pages import VllmState, vllm_page
from igw.epp.testing.metrics_server import MetricsServers
from igw.epp.testing.model_servers import ScriptedModelServer
from igw.epp.testing.waiting import wait_until

HEADERS = (
    (":method", "POST"),
    (":path", "/v1/chat/completions"),
    ("content-type", "application/json"),
)
START_S = 60.0


@dataclass
class Workers:
    process: subprocess.Popen[bytes]
    directory: Path

    def ready(self, index: int) -> dict[str, Any] | None:
        path = self.directory / f"w{index}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def info(self, index: int) -> dict[str, Any]:
        info = self.ready(index)
        assert info is not None
        return info

    def requests_served(self, index: int) -> float:
        """`inference_objective_request_total` on worker `index`'s Prometheus endpoint."""
        url = f"http://127.0.0.1:{self.info(index)['metrics_port']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("inference_objective_request_total{")
        )


@contextlib.asynccontextmanager
async def _started(directory: Path, endpoints: str) -> AsyncIterator[Workers]:
    """`igw-epp --workers 2` serving the endpoints file text `endpoints`, stopped on exit."""
    await asyncio.to_thread((directory / "endpoints.yaml").write_text, endpoints)
    argv = [
        sys.executable, "-m", "igw.epp.cli", "--workers", "2", "--worker-dir", str(directory / "w"),
        "--grpc-port", "0", "--grpc-health-port", "0", "--metrics-port", "0",
        "--host", "127.0.0.1", "--endpoints-file", str(directory / "endpoints.yaml"),
        "--secure-serving=false", "--tracing=false", "--metrics-endpoint-auth=false",
    ]  # fmt: skip
    process = await asyncio.to_thread(subprocess.Popen, argv)
    running = Workers(process, directory / "w")
    try:
        await wait_until(
            lambda: running.ready(0) is not None and running.ready(1) is not None, START_S
        )
        yield running
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)


@pytest.fixture
async def workers(tmp_path: Path) -> AsyncIterator[Workers]:
    pages = MetricsServers()
    ports = await pages.start(2)
    pages.set_page(ports[1], vllm_page(VllmState(waiting=7)))
    rows = "".join(
        f"  - {{name: pod{i}, address: 127.0.0.1, port: {p}}}\n" for i, p in enumerate(ports)
    )
    try:
        async with _started(tmp_path, "endpoints:\n" + rows) as running:
            yield running
    finally:
        await pages.close()


async def _route(port: int, body: bytes) -> None:
    """One request through a new connection (the kernel picks the worker per connection)."""
    # A local subchannel pool: channels to one target otherwise share a connection that
    # outlives the previous channel, and every request would land on the same worker.
    options = [("grpc.use_local_subchannel_pool", 1)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        call = messages.ext_proc_call(channel)(timeout=10)
        await call.write(messages.request_headers(HEADERS))
        await call.write(messages.request_body(body, end_of_stream=True))
        reply = await call.read()
        assert reply is not grpc.aio.EOF
        call.cancel()


async def _until(check: Callable[[], Awaitable[bool]], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not await check():  # noqa: ASYNC110 - asks another process, no event to await
            await asyncio.sleep(0.02)


async def _admin(workers: Workers, index: int) -> AdminClient:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{workers.info(index)['health_port']}")
    return AdminClient(channel)


async def _fresh_metrics(workers: Workers, index: int) -> None:
    """Until worker `index` reports both pods scraped, pod1 with its 7 waiting requests."""
    admin = await _admin(workers, index)

    async def fresh() -> bool:
        inventory = await admin.list_endpoints()
        waiting = {row.endpoint.name: row.metrics.waiting for row in inventory.endpoints}
        return all(not row.stale for row in inventory.endpoints) and waiting.get("pod1-rank-0") == 7

    await _until(fresh, START_S)


async def test_both_workers_share_the_port_and_take_streams(workers: Workers) -> None:
    port = workers.info(0)["grpc_port"]
    assert workers.info(1)["grpc_port"] == port
    assert workers.info(0)["pid"] != workers.info(1)["pid"]
    for i in range(24):
        await _route(port, chat_body(f"question {i}"))
    served = [workers.requests_served(0), workers.requests_served(1)]
    assert sum(served) == 24
    assert min(served) > 0, served  # 24 connections all hashed onto one process: 2**-23


async def test_scraped_metrics_reach_the_worker_that_does_not_scrape(workers: Workers) -> None:
    await _fresh_metrics(workers, 1)


async def test_a_prefix_routed_by_one_worker_scores_on_the_other(workers: Workers) -> None:
    await _fresh_metrics(workers, 0)
    port = workers.info(0)["grpc_port"]
    body = chat_body("the same long question " * 40)
    before = [workers.requests_served(0), workers.requests_served(1)]
    await _route(port, body)
    took = 0 if workers.requests_served(0) > before[0] else 1
    other = await _admin(workers, 1 - took)

    async def prefix_scores() -> tuple[float, ...]:
        explanation = await other.explain("/v1/chat/completions", {}, body)
        [column] = [
            c
            for c in explanation.profiles["default"].scorers
            if c.plugin_type == "prefix-cache-scorer"
        ]
        return column.scores

    async def full_match() -> bool:
        return max(await prefix_scores()) == 1.0

    await _until(full_match, 10)


@pytest.mark.parametrize(
    "index", [pytest.param(0, id="the-scraper"), pytest.param(1, id="worker-1")]
)
async def test_a_killed_worker_is_started_again_and_catches_up(
    workers: Workers, index: int
) -> None:
    old = workers.info(index)["pid"]
    os.kill(old, signal.SIGKILL)
    await wait_until(lambda: (workers.ready(index) or {}).get("pid", old) != old, START_S)
    assert workers.info(index)["grpc_port"] == workers.info(1 - index)["grpc_port"]
    await _fresh_metrics(workers, 1)  # worker 1's scrapes come from worker 0, old or new
    port = workers.info(0)["grpc_port"]
    for i in range(8):
        await _route(port, chat_body(f"after restart {i}"))
    assert workers.process.poll() is None


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for whoever adopted it counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


async def test_workers_do_not_outlive_a_killed_parent(workers: Workers) -> None:
    pids = [workers.info(0)["pid"], workers.info(1)["pid"]]
    workers.process.kill()
    await wait_until(lambda: all(_gone(pid) for pid in pids), START_S)


async def test_through_envoy_both_workers_route_and_no_request_fails(
    tmp_path: Path, envoy_factory: EnvoyFactory
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        pods = [await stack.enter_async_context(ScriptedModelServer(f"pod{i}")) for i in range(2)]
        pages = MetricsServers()
        stack.push_async_callback(pages.close)
        metrics = await pages.start(2)
        rows = "".join(
            f"  - {{name: pod{i}, address: 127.0.0.1, port: {pod.port}, metricsPort: {m}}}\n"
            for i, (pod, m) in enumerate(zip(pods, metrics, strict=True))
        )
        workers = await stack.enter_async_context(_started(tmp_path, "endpoints:\n" + rows))
        # At most 2 streams at a time and 4 in all per connection: Envoy opens several
        # connections and keeps replacing them, and the kernel places each on a worker
        # (docs/concepts/workers.md, "Spreading the load"). Without replacement, the few
        # connections Envoy opened could all land on one worker (a fresh-clone CI run saw 64 of
        # 64 requests on worker 0).
        ext_proc = ExtProcFilter(
            "epp", workers.info(0)["grpc_port"], tls=False,
            max_concurrent_streams=2, max_requests_per_connection=4,
        )  # fmt: skip
        config = gateway_bootstrap(
            routes=[], ext_procs=[ext_proc], clusters=[OriginalDstCluster("pool")],
            default_cluster="pool", access_log=False,
        )  # fmt: skip
        envoy = await envoy_factory.start_async(config, concurrency=2)
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def chat(i: int) -> int:
            body = chat_body(f"question {i}")
            async with session.post(f"{envoy.url}/v1/chat/completions", data=body) as answer:
                await answer.read()
                return answer.status

        statuses = [
            s
            for n in range(4)
            for s in await asyncio.gather(*(chat(16 * n + i) for i in range(16)))
        ]
        assert statuses == [200] * 64
        served = [workers.requests_served(0), workers.requests_served(1)]
        assert sum(served) == 64
        assert min(served) > 0, served
        assert sum(len(pod.received) for pod in pods) == 64
