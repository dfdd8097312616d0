"""The datastore on real loopback servers: metrics arrive, failures age, reconcile, shutdown."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable

import pytest

from igw.epp.datalayer.datastore import Datastore
from igw.epp.datalayer.metrics_data_source import MetricsDataSource
from igw.epp.endpoints import Endpoint, EndpointState, Metrics
from igw.epp.testing import Behaviour, MetricsServers, VllmState, vllm_page

INTERVAL = 0.01


@pytest.fixture
async def servers() -> AsyncIterator[MetricsServers]:
    servers = MetricsServers()
    yield servers
    await servers.close()


@pytest.fixture
async def datastore() -> AsyncIterator[Datastore]:
    store = Datastore(MetricsDataSource(timeout_s=0.1), refresh_interval_s=INTERVAL)
    await store.start()
    yield store
    await store.close()


def local(name: str, port: int, **labels: str) -> Endpoint:
    return Endpoint(name, "127.0.0.1", port, labels=labels)


def state(store: Datastore, name: str) -> EndpointState:
    (found,) = [s for s in store.endpoints() if s.endpoint.name == name]
    return found


async def until(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(INTERVAL / 2)


async def test_metrics_appear_within_a_few_intervals(
    servers: MetricsServers, datastore: Datastore
) -> None:
    (port,) = await servers.start(1, vllm_page(VllmState(waiting=6, kv_usage=0.5)))
    datastore.reconcile([local("a-rank-0", port)])
    assert state(datastore, "a-rank-0").age(time.monotonic()) == float("inf")  # not yet scraped
    started = time.monotonic()
    await until(lambda: state(datastore, "a-rank-0").metrics.waiting == 6)
    assert time.monotonic() - started < 10 * INTERVAL + 0.2
    assert state(datastore, "a-rank-0").metrics.kv_cache_usage == 0.5
    servers.set_page(port, vllm_page(VllmState(waiting=2)))
    await until(lambda: state(datastore, "a-rank-0").metrics.waiting == 2)


@pytest.mark.parametrize("failure", [Behaviour.ERROR, Behaviour.GARBAGE, Behaviour.HANG, "down"])
async def test_a_failing_endpoint_ages_while_others_keep_updating(
    servers: MetricsServers, datastore: Datastore, failure: Behaviour | str, refused_port: int
) -> None:
    bad, good = await servers.start(2, vllm_page(VllmState(waiting=1)))
    datastore.reconcile([local("bad", bad), local("good", good)])
    await until(lambda: all(s.metrics.waiting == 1 for s in datastore.endpoints()))
    if failure == "down":
        datastore.reconcile([local("bad", refused_port), local("good", good)])
    else:
        assert isinstance(failure, Behaviour)
        servers.set_behaviour(bad, failure)
    servers.set_page(bad, vllm_page(VllmState(waiting=9)))
    servers.set_page(good, vllm_page(VllmState(waiting=2)))
    await until(lambda: state(datastore, "good").metrics.waiting == 2)
    await asyncio.sleep(0.3)  # longer than the poll timeout
    seen = state(datastore, "good").metrics.updated_at
    # The good endpoint keeps being refreshed (a condition, not a bound a busy machine could miss).
    await until(lambda: state(datastore, "good").metrics.updated_at > seen)
    now = time.monotonic()
    assert state(datastore, "bad").age(now) > 0.25  # stale: last good (or no) metrics kept
    assert state(datastore, "bad").metrics.waiting in (0, 1)


async def test_reconcile_adds_removes_and_restarts_changed_endpoints(
    servers: MetricsServers, datastore: Datastore
) -> None:
    p1, p2, p3 = await servers.start(3, vllm_page(VllmState(waiting=1)))
    servers.set_page(p3, vllm_page(VllmState(waiting=3)))
    datastore.reconcile([local("a", p1), local("b", p2)])
    await until(lambda: all(s.metrics.waiting == 1 for s in datastore.endpoints()))
    kept = state(datastore, "a")

    datastore.reconcile([local("a", p1), local("c", p1)])  # b removed, c added
    assert [s.endpoint.name for s in datastore.endpoints()] == ["a", "c"]
    hits = servers.hits[p2]
    await until(lambda: state(datastore, "c").metrics.waiting == 1)
    assert servers.hits[p2] == hits  # b's collector is gone
    assert state(datastore, "a").metrics.updated_at >= kept.metrics.updated_at

    datastore.reconcile([local("a", p3), local("c", p1)])  # a moved: fresh metrics from p3
    assert state(datastore, "a").metrics.updated_at == 0
    await until(lambda: state(datastore, "a").metrics.waiting == 3)


async def test_replaying_the_same_list_changes_nothing(
    servers: MetricsServers, datastore: Datastore
) -> None:
    (port,) = await servers.start(1)
    datastore.reconcile([local("a", port, app="x")])
    await until(lambda: state(datastore, "a").metrics.updated_at > 0)
    before = datastore.endpoints()
    datastore.reconcile([local("a", port, app="x")])
    assert datastore.endpoints() == before  # same snapshot, collector not restarted


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate endpoint names"):
        Datastore().reconcile([local("a", 1), local("a", 2)])


async def test_endpoints_reconciled_before_start_are_collected_after(
    servers: MetricsServers,
) -> None:
    (port,) = await servers.start(1, vllm_page(VllmState(running=4)))
    store = Datastore(refresh_interval_s=INTERVAL)
    store.reconcile([local("a", port)])
    async with store:
        await until(lambda: state(store, "a").metrics.running == 4)


async def test_close_cancels_every_collector_and_closes_the_client(
    servers: MetricsServers,
) -> None:
    ports = await servers.start(3)
    servers.set_behaviour(ports[0], Behaviour.HANG)  # a poll in flight at shutdown
    store = Datastore(refresh_interval_s=INTERVAL)
    await store.start()
    store.reconcile([local(f"e{i}", port) for i, port in enumerate(ports)])
    await until(lambda: servers.hits[ports[1]] > 2)
    store.reconcile([local("e1", ports[1]), local("e2", ports[2])])  # e0 is being stopped
    await store.close()
    collectors = [t for t in asyncio.all_tasks() if t.get_name().startswith("epp-metrics")]
    assert collectors == []
    await asyncio.sleep(INTERVAL)  # a request sent just before close may still reach the server
    hits = sum(servers.hits.values())
    await asyncio.sleep(5 * INTERVAL)
    assert sum(servers.hits.values()) == hits
    with pytest.raises(RuntimeError, match="closed"):
        store.reconcile([])


async def test_phase_slots_spread_the_first_polls(servers: MetricsServers) -> None:
    """With 2 slots over 1 s, an endpoint drawn into the second slot waits 0.5 s to start."""
    ports = await servers.start(6)
    draw = random.Random(7)  # noqa: S311 - the same dice as the datastore's
    slots = [draw.randrange(2) for _ in ports]
    assert sorted(set(slots)) == [0, 1]  # the seed exercises both slots
    first = [p for p, s in zip(ports, slots, strict=True) if s == 0]
    store = Datastore(refresh_interval_s=1.0, phase_slots=2, rng=random.Random(7))  # noqa: S311
    async with store:
        store.reconcile([local(f"e{i}", port) for i, port in enumerate(ports)])
        await until(lambda: all(servers.hits[p] for p in first))
        assert [servers.hits[p] > 0 for p in ports] == [s == 0 for s in slots]
        await until(lambda: all(servers.hits[p] for p in ports))


def test_phase_slots_must_be_positive() -> None:
    with pytest.raises(ValueError, match="phase_slots"):
        Datastore(phase_slots=0)


async def test_on_metrics_hears_every_published_scrape(
    servers: MetricsServers, datastore: Datastore
) -> None:
    heard: list[tuple[str, int]] = []
    datastore.on_metrics = lambda endpoint, metrics: heard.append((endpoint.name, metrics.waiting))
    (port,) = await servers.start(1, vllm_page(VllmState(waiting=4)))
    datastore.reconcile([local("a-rank-0", port)])
    await until(lambda: len(heard) >= 2)
    assert set(heard) == {("a-rank-0", 4)}


def test_another_process_s_scrape_applies_only_to_the_same_server() -> None:
    store = Datastore(collect=False)
    store.reconcile([local("a-rank-0", 8000)])
    changes: list[None] = []
    store.on_change = lambda: changes.append(None)
    scraped = Metrics(waiting=3, updated_at=5.0)
    assert not store.apply_metrics("a-rank-0", "127.0.0.1:9999", scraped)  # replaced server
    assert not store.apply_metrics("b-rank-0", "127.0.0.1:8000", scraped)  # unknown endpoint
    assert state(store, "a-rank-0").metrics == Metrics()
    assert store.apply_metrics("a-rank-0", "127.0.0.1:8000", scraped)
    assert state(store, "a-rank-0").metrics == scraped
    assert len(changes) == 1  # flow control wakes on it as on a local scrape


def test_a_snapshot_handed_out_never_changes_and_the_next_one_is_current() -> None:
    store = Datastore(collect=False)
    store.reconcile([local(f"p{i}-rank-0", 8000 + i) for i in range(3)])
    before = store.endpoints()
    for i in range(3):
        store.apply_metrics(f"p{i}-rank-0", f"127.0.0.1:{8000 + i}", Metrics(waiting=i + 1))
    after = store.endpoints()
    assert [s.metrics.waiting for s in before] == [0, 0, 0]  # what a reader holds stays whole
    assert [s.metrics.waiting for s in after] == [1, 2, 3]
    assert store.endpoints() is after  # nothing changed since: the same snapshot
    store.apply_metrics("p1-rank-0", "127.0.0.1:8001", Metrics(waiting=9))
    assert [s.metrics.waiting for s in store.endpoints()] == [1, 9, 3]
    assert [s.metrics.waiting for s in after] == [1, 2, 3]
