"""Fault tests for the gateway's failure modes (`igw.e2e.failover`): kill -9 of the EPP or the
BBR under load, through `make run`'s gateway (real Envoy, processes, simulated pool).

* FailOpen: no request fails. While the service is gone Envoy serves on its own (the pool's
  round robin, the model header the request carried); once the supervisor has it back, the
  EPP routes again (its fresh process counts the requests it schedules).
* FailClose: a request fails only as a 500 whose body names the processor failure; none hangs.
* Either way, a streamed answer the EPP let go of at its response headers (the lean response
  mode, body not needed) survives the EPP's death mid-stream, whole.

Each test prints its summary (requests sent, succeeded, failed). Every wait is on a condition,
with bounds a loaded 2-core machine keeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import aiohttp
import pytest

from igw.common.testing.envoy_config import PROCESSOR_FAILED_BODY
from igw.e2e.failover import FailureMode
from igw.e2e.gateway import GatewayPorts, LocalGateway
from igw.e2e.steady_load import SteadyLoad, chat_body
from igw.e2e.supervisor import Supervised

pytestmark = [pytest.mark.envoy]

WARM = 16
"""Requests that must succeed before the kill, during the outage, and after the return."""
MESSAGE_TIMEOUT_S = 5.0
"""The filters' `message_timeout` (ExtProcFilter's default): no failure may take longer than
this plus a loaded machine's slack."""
_SCHEDULED = "inference_objective_request_total"


@contextlib.asynccontextmanager
async def _gateway(
    workdir: Path, mode: FailureMode, sim_options: Mapping[str, object] | None = None
) -> AsyncIterator[LocalGateway]:
    ports = GatewayPorts.free()
    gateway = LocalGateway(ports, workdir, failure_mode=mode, sim_options=sim_options)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def _until(condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


def _scheduled(unit: Supervised) -> float:
    """Requests the EPP process now serving has scheduled (its Prometheus counter)."""
    url = f"http://127.0.0.1:{unit.slot.metrics}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as page:
            text = page.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(_SCHEDULED + "{")
    )


def _kill(unit: Supervised) -> tuple[int, int]:
    pid = unit.pid
    assert pid is not None
    restarts = unit.restarts
    os.kill(pid, signal.SIGKILL)
    return pid, restarts


@pytest.mark.parametrize("service", ["epp", "bbr"])
async def test_fail_open_kill_9_fails_no_request(
    tmp_path: Path, service: str, fault_report: Callable[[str], None]
) -> None:
    async with (
        _gateway(tmp_path, "FailOpen") as gateway,
        SteadyLoad(gateway.url, clients=8) as load,
    ):
        unit = gateway.services[service]
        await load.wait_for(lambda t: t.succeeded >= WARM, timeout_s=60)
        pid, restarts = _kill(unit)
        at_kill = load.tally.succeeded
        # The supervisor waits before it restarts, and a new process takes a second or two to
        # start: requests keep succeeding with the service gone.
        await load.wait_for(lambda t: t.succeeded >= at_kill + WARM, timeout_s=60)

        async def back() -> bool:
            return unit.restarts == restarts + 1 and unit.serving and unit.pid != pid

        await _until(back, f"the {service} did not come back", timeout_s=60)
        if service == "epp":
            epp = gateway.services["epp"]

            async def routing() -> bool:
                return await asyncio.to_thread(_scheduled, epp) >= WARM

            await _until(routing, "the EPP back did not route again", timeout_s=60)
        after = load.tally.succeeded
        await load.wait_for(lambda t: t.succeeded >= after + WARM, timeout_s=60)
        assert gateway.envoy is not None
        stats = gateway.envoy.admin_stats("")
    summary = load.tally.summary(f"FailOpen, kill -9 of the {service}")
    fault_report(summary)
    assert load.tally.failed == 0, summary
    # The outage was real and served: requests went on without the service.
    assert stats["http.gateway.ext_proc.failure_mode_allowed"] > 0
    if service == "epp":  # ... to the pool by Envoy's own round robin
        assert stats["cluster.pool_fallback.upstream_rq_200"] > 0


async def test_fail_close_kill_9_fails_with_a_clear_500_and_never_hangs(
    tmp_path: Path, fault_report: Callable[[str], None]
) -> None:
    async with _gateway(tmp_path, "FailClose") as gateway:
        unit = gateway.services["epp"]
        async with SteadyLoad(gateway.url, clients=8) as load:
            await load.wait_for(lambda t: t.succeeded >= WARM, timeout_s=60)
            pid, restarts = _kill(unit)
            # What one request sees while the EPP is gone.
            status, body, took = await _one(gateway.url)

            async def back() -> bool:
                return unit.restarts == restarts + 1 and unit.serving and unit.pid != pid

            await _until(back, "the EPP did not come back", timeout_s=60)
            after = load.tally.succeeded
            await load.wait_for(lambda t: t.succeeded >= after + WARM, timeout_s=60)
    summary = load.tally.summary("FailClose, kill -9 of the EPP")
    fault_report(summary)
    # Every failure is a 500 (no reset, no truncated stream, no timeout) ...
    assert set(load.tally.failures) <= {"status 500"}, summary
    # ... and, as the one request shows, it says why and comes at once.
    if status != 200:
        assert status == 500
        assert body.startswith(PROCESSOR_FAILED_BODY), body
        assert took < MESSAGE_TIMEOUT_S, took


async def _one(url: str) -> tuple[int, str, float]:
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=60)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"{url}/v1/chat/completions", json=chat_body(stream=False, max_tokens=4)) as r,
    ):
        return r.status, await r.text(), time.monotonic() - started


async def test_a_lean_streamed_answer_survives_kill_9_of_the_epp(
    tmp_path: Path, fault_report: Callable[[str], None]
) -> None:
    # Real-time simulation: the answer takes seconds, the EPP dies while it flows.
    async with _gateway(tmp_path, "FailClose", sim_options={"time-scale": 1}) as gateway:
        unit = gateway.services["epp"]
        body = chat_body(stream=True, max_tokens=300, text="Tell me a long story")
        timeout = aiohttp.ClientTimeout(total=120)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(f"{gateway.url}/v1/chat/completions", json=body) as response,
        ):
            assert response.status == 200
            lines = [await response.content.readline()]
            process = gateway.epp.process
            assert process is not None
            _kill(unit)
            await asyncio.to_thread(process.wait, 30)  # dead before the answer goes on
            lines += [line async for line in response.content]
    events = [line.strip() for line in lines if line.startswith(b"data: ")]
    whole = int(events[-1] == b"data: [DONE]")
    fault_report(f"lean stream, kill -9 of the EPP mid-answer: sent 1, succeeded {whole}, "
                 f"failed {1 - whole} ({len(events)} events)")  # fmt: skip
    assert events[-1] == b"data: [DONE]"
    # Every token came (300 content chunks; the role and finish chunks and [DONE] around them).
    assert len(events) >= 300
