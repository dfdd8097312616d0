"""One endpoint's collector: the poll outcome, the ticker, and rate-limited failure logs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import structlog

from igw.epp.datalayer.collector import Collector
from igw.epp.datalayer.core_metrics_extractor import CoreMetricsExtractor
from igw.epp.datalayer.metrics_data_source import MetricsDataSource
from igw.epp.endpoints import Endpoint, Metrics
from igw.epp.testing import Behaviour, MetricsServers, VllmState, vllm_page


@pytest.fixture
async def servers() -> AsyncIterator[MetricsServers]:
    servers = MetricsServers()
    yield servers
    await servers.close()


@pytest.fixture
async def source() -> AsyncIterator[MetricsDataSource]:
    source = MetricsDataSource(timeout_s=0.1)
    await source.start()
    yield source
    await source.close()


async def until(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def collector(source: MetricsDataSource, port: int, published: list[Metrics]) -> Collector:
    endpoint = Endpoint("a-rank-0", "127.0.0.1", port)
    reader = CoreMetricsExtractor().reader_for(endpoint)
    return Collector(endpoint, reader, source, published.append, interval_s=0.005)


async def test_good_poll_publishes_and_failed_poll_keeps_previous(
    servers: MetricsServers, source: MetricsDataSource
) -> None:
    (port,) = await servers.start(1, vllm_page(VllmState(waiting=3)))
    published: list[Metrics] = []
    poller = collector(source, port, published)
    first = await poller.poll_once(Metrics())
    assert (first.waiting, published) == (3, [first])
    assert first.updated_at > 0
    servers.set_behaviour(port, Behaviour.GARBAGE)
    assert await poller.poll_once(first) is first
    assert published == [first]


async def test_failures_are_logged_once_and_recovery_once(
    servers: MetricsServers, source: MetricsDataSource
) -> None:
    (port,) = await servers.start(1)
    servers.set_behaviour(port, Behaviour.ERROR)
    published: list[Metrics] = []
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(collector(source, port, published).run(Metrics()))
        await until(lambda: servers.hits[port] >= 10)
        servers.set_behaviour(port, Behaviour.OK)
        await until(lambda: bool(published))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    events = [entry["event"] for entry in logs]
    assert events == ["epp.datalayer.scrape_failed", "epp.datalayer.scrape_recovered"]
    assert "HTTP 500" in logs[0]["error"]
    assert logs[1]["failures"] >= 10


async def test_the_ticker_polls_at_the_interval(
    servers: MetricsServers, source: MetricsDataSource
) -> None:
    (port,) = await servers.start(1)
    task = asyncio.create_task(collector(source, port, []).run(Metrics()))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 15 <= servers.hits[port] <= 45  # 0.2 s at 5 ms: about 40, fewer on a busy machine


async def test_the_first_poll_waits_its_phase(
    servers: MetricsServers, source: MetricsDataSource
) -> None:
    """Phases spread collectors started together; a sleep never ends early, so this is exact."""
    (port,) = await servers.start(1)
    published: list[Metrics] = []
    task = asyncio.create_task(collector(source, port, published).run(Metrics(), phase_s=0.3))
    await asyncio.sleep(0.1)
    assert servers.hits[port] == 0
    await until(lambda: bool(published))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
