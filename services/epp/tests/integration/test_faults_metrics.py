"""Fault tests: a model server whose `/metrics` endpoint misbehaves, through a real Envoy.

The EPP runs in-process with its real data layer: static discovery from an endpoints file and
the scraper polling each pod's `metricsPort` every 50 ms. Three pods answer inference
(`GeneratingModelServer`); two serve a good vLLM page, the third's page is garbage, never comes
(longer than the scraper's 1 s timeout), or is 50 MB (over the scraper's body limit). Under load
(8 clients, half streaming) what a user and an operator notice:

* no request fails: the pod with bad metrics still answers, and the others take requests;
* `igw-epp endpoints` (the admin `ListEndpoints`) reports that pod stale, past
  `--metrics-staleness-threshold`, and the two others fresh.

Each test prints its summary: requests sent, succeeded, failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.admin import AdminClient
from igw.epp.admin.inventory import Inventory
from igw.epp.testing.generating_server import GeneratingModelServer
from igw.epp.testing.metrics_server import Behaviour, MetricsServers
from igw.epp.testing.scraped_gateway import ScrapedGateway, open_scraped_gateway

pytestmark = pytest.mark.envoy

STALENESS_S = 2.0
"""The EPP's `--metrics-staleness-threshold` (its default)."""
HUGE = 50 * 1024 * 1024
CLIENTS = 8
REQUESTS = 96
_TIMEOUT = aiohttp.ClientTimeout(total=60)


@dataclasses.dataclass
class Tally:
    sent: int = 0
    succeeded: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)

    def summary(self, fault: str) -> str:
        return (
            f"{fault}: sent {self.sent}, succeeded {self.succeeded}, failed {len(self.failures)}"
            + (f" {self.failures[:5]}" if self.failures else "")
        )


@contextlib.asynccontextmanager
async def _pool(
    envoy_factory: EnvoyFactory, workdir: Path, fault: Behaviour | str
) -> AsyncIterator[tuple[ScrapedGateway, dict[str, GeneratingModelServer]]]:
    async with contextlib.AsyncExitStack() as stack:
        pods = {
            n: GeneratingModelServer(n, token_interval_s=0.002) for n in ("good-a", "good-b", "bad")
        }
        for pod in pods.values():
            await stack.enter_async_context(pod)
        pages = MetricsServers()
        stack.push_async_callback(pages.close)
        ports = dict(zip(pods, await pages.start(len(pods)), strict=True))
        if fault == "huge":
            pages.set_page(ports["bad"], b"# " + b"x" * HUGE + b"\n")
        else:
            assert isinstance(fault, Behaviour)
            pages.set_behaviour(ports["bad"], fault)
        addresses = {n: (p.port, ports[n]) for n, p in pods.items()}
        gateway = await stack.enter_async_context(
            open_scraped_gateway(envoy_factory, workdir, addresses, staleness_s=STALENESS_S)
        )
        yield gateway, pods


async def _stale(admin: AdminClient) -> dict[str, bool]:
    inventory: Inventory = await admin.list_endpoints()
    return {r.endpoint.pod: r.stale for r in inventory.endpoints}


async def _until_reported(admin: AdminClient, want: dict[str, bool]) -> None:
    """Until the admin API reports staleness as `want` (the good pods' first scrapes done, the
    bad one past the threshold)."""
    deadline = time.monotonic() + 30
    while (got := await _stale(admin)) != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"staleness {got}, wanted {want}")
        await asyncio.sleep(0.1)


async def _load(url: str) -> Tally:
    tally = Tally()
    queue = list(range(REQUESTS))

    async def client(session: aiohttp.ClientSession, stream: bool) -> None:
        while queue:
            i = queue.pop()
            tally.sent += 1
            body = {"model": "m", "prompt": f"request {i}", "max_tokens": 20, "stream": stream}
            try:
                async with session.post(url + "/v1/completions", json=body) as response:
                    text = await response.text()
            except (aiohttp.ClientError, TimeoutError) as e:
                tally.failures.append(type(e).__name__)
                continue
            complete = text.rstrip().endswith("data: [DONE]") if stream else "choices" in text
            if response.status == 200 and complete:
                tally.succeeded += 1
            else:
                tally.failures.append(f"{response.status} {text[:80]!r}")

    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        await asyncio.gather(*(client(session, i % 2 == 1) for i in range(CLIENTS)))
    return tally


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Behaviour.GARBAGE, id="garbage"),
        pytest.param(Behaviour.HANG, id="times-out"),
        pytest.param("huge", id="50-MB"),
    ],
)
async def test_a_pod_with_bad_metrics_is_stale_and_routing_goes_on(
    envoy_factory: EnvoyFactory,
    tmp_path: Path,
    fault: Behaviour | str,
    fault_report: Callable[[str], None],
) -> None:
    async with _pool(envoy_factory, tmp_path, fault) as (gateway, pods):
        want = {"good-a": False, "good-b": False, "bad": True}
        await _until_reported(gateway.admin, want)
        tally = await _load(gateway.url)
        reported = await _stale(gateway.admin)
        served = {name: len(pod.received) for name, pod in pods.items()}
    name = fault if isinstance(fault, str) else fault.value
    summary = tally.summary(f"metrics endpoint {name}")
    fault_report(f"{summary}; served {json.dumps(served)}")
    assert tally.failures == [], summary
    assert tally.succeeded == REQUESTS
    assert reported == want  # still stale after the load: the page never became readable
    assert served["good-a"] + served["good-b"] > 0  # the others take requests
