"""Fault tests through `make run`'s gateway: graceful SIGTERM, kill -9, rolling restarts.

One gateway (free ports, the EPP in the compatible response mode so that every response body
passes through it: the hardest case for a drain) serves the module. Each fault runs under
`SteadyLoad` (8 clients, half streaming) where it says so, and prints its summary: requests sent,
succeeded, failed. Every wait is on a condition, with bounds a loaded 2-core machine keeps.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2

from igw.e2e.gateway import GatewayPorts, LocalGateway
from igw.e2e.steady_load import SteadyLoad, chat_body

pytestmark = [pytest.mark.envoy, pytest.mark.asyncio(loop_scope="module")]

WARM = 16
"""Requests that must succeed before a fault, and again after it, under load."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalGateway]:
    gw = LocalGateway(
        GatewayPorts.free(), tmp_path_factory.mktemp("supervised"), response_mode="compatible"
    )
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def _wait(condition: object, what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


async def _serves(gateway: LocalGateway) -> bool:
    """One non-streamed request through the whole chain succeeds."""
    body = chat_body(stream=False, max_tokens=4)
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(f"{gateway.url}/v1/chat/completions", json=body) as response,
        ):
            await response.read()
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


@pytest.mark.parametrize("service", ["epp", "bbr"])
async def test_a_rolling_restart_under_load_fails_no_request(
    gateway: LocalGateway, service: str, fault_report: Callable[[str], None]
) -> None:
    unit = gateway.services[service]
    old_pid, old_slot = unit.pid, unit.slot
    async with SteadyLoad(gateway.url, clients=8) as load:
        await load.wait_for(lambda t: t.succeeded >= WARM, timeout_s=60)
        report = await gateway.restart(service)
        after = load.tally.succeeded
        await load.wait_for(lambda t: t.succeeded >= after + WARM, timeout_s=60)
    summary = load.tally.summary(f"rolling restart of the {service}")
    fault_report(f"{summary}; {report}")
    assert load.tally.failed == 0, summary
    assert (unit.pid, unit.slot) != (old_pid, old_slot)
    assert "drained and exited 0" in report


@pytest.mark.parametrize("service", ["epp", "bbr", "sim"])
async def test_kill_9_is_restarted_and_the_gateway_serves_again(
    gateway: LocalGateway, service: str, fault_report: Callable[[str], None]
) -> None:
    unit = gateway.services[service]
    restarts, pid = unit.restarts, unit.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    async def back() -> bool:
        # `serving`: the new process passed Envoy's health check too; before that Envoy, with no
        # healthy host, spreads streams over both slots (its panic mode), one of them empty.
        restarted = unit.restarts == restarts + 1 and unit.pid != pid and unit.serving
        return restarted and await _serves(gateway)

    await _wait(back, f"the {service} was not restarted, or the gateway does not serve")
    assert f"restarts {restarts + 1}" in gateway.status()
    fault_report(f"kill -9 of the {service}: restarted (restart {unit.restarts}), serving again")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def _health(port: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        answer = await check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        return int(answer.status)


async def test_sigterm_lets_a_streamed_answer_in_flight_finish(gateway: LocalGateway) -> None:
    """SIGTERM mid-stream: readiness NOT_SERVING at once, new streams refused after the shutdown
    delay, the streamed answer (its body passing through the EPP) completes, the EPP exits 0."""
    unit = gateway.services["epp"]
    process, slot = gateway.epp.process, unit.slot
    assert process is not None
    body = chat_body(stream=True, max_tokens=10_000, text="Tell me a long story")  # ~10 s
    events: list[bytes] = []
    timeout = aiohttp.ClientTimeout(total=120)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"{gateway.url}/v1/chat/completions", json=body) as response,
    ):
        assert response.status == 200
        events.append(await response.content.readline())
        process.send_signal(signal.SIGTERM)
        assert await _health(slot.health) == health_pb2.HealthCheckResponse.NOT_SERVING

        async def refusing() -> bool:
            return not _listening(slot.grpc)

        await _wait(refusing, "the EPP kept taking new streams", timeout_s=30)
        assert process.poll() is None, "the EPP exited with a stream in flight"
        events += [line async for line in response.content]
    data = [line for line in events if line.startswith(b"data: ")]
    assert data[-1].strip() == b"data: [DONE]"
    assert await asyncio.to_thread(process.wait, 60) == 0

    async def back() -> bool:  # the supervisor restarts it: it did not mean to stop
        return unit.serving and unit.pid != process.pid and await _serves(gateway)

    await _wait(back, "the gateway did not serve after the EPP's restart")


async def test_sigterm_lets_a_request_body_in_flight_through_the_bbr_finish(
    gateway: LocalGateway,
) -> None:
    """The BBR's side of a drain: a request whose body is still arriving when the BBR gets
    SIGTERM (and stops taking new streams) is routed and answered; the BBR exits 0."""
    unit = gateway.services["bbr"]
    process, slot = gateway.bbr.process, unit.slot
    assert process is not None
    head = b'{"model": "meta-llama/Llama-3.1-8B-Instruct", "messages": ['
    tail = b'{"role": "user", "content": "hi"}], "max_tokens": 4}'
    release = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield head
        await release.wait()
        yield tail

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        headers = {"content-type": "application/json"}
        url = f"{gateway.url}/v1/chat/completions"
        request = asyncio.create_task(session.post(url, data=body(), headers=headers))

        async def receiving() -> bool:  # the BBR's stream for this request is open
            return _stream_count(gateway, "bbr") >= 1

        await _wait(receiving, "the request never reached the BBR")
        process.send_signal(signal.SIGTERM)

        async def refusing() -> bool:
            return not _listening(slot.grpc)

        await _wait(refusing, "the BBR kept taking new streams", timeout_s=30)
        assert process.poll() is None, "the BBR exited with a request in flight"
        release.set()
        async with await request as response:
            answer = await response.json()
    assert response.status == 200, answer
    assert answer["choices"]
    assert await asyncio.to_thread(process.wait, 60) == 0

    async def back() -> bool:
        return unit.serving and unit.pid != process.pid and await _serves(gateway)

    await _wait(back, "the gateway did not serve after the BBR's restart")


def _stream_count(gateway: LocalGateway, service: str) -> int:
    """ext_proc streams Envoy has open to `service` (its cluster's active requests)."""
    assert gateway.envoy is not None
    stats = gateway.envoy.admin_stats(f"cluster.ext_proc_{service}.upstream_rq_active")
    return sum(stats.values())
