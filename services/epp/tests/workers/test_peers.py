"""`Peers`: what one worker changes reaches the other, over real Unix datagram sockets.

Two workers live in this one process here, each with its own plugins, as two processes would.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from igw.epp.datalayer import Datastore
from igw.epp.endpoints import Metrics
from igw.epp.framework.cycle_state import CycleState
from igw.epp.framework.results import ProfileResult, SchedulingResult
from igw.epp.scheduling.plugins import (
    ApproxPrefixCacheProducer,
    InflightLoadProducer,
    OnlineLatencyProducer,
)
from igw.epp.testing.builders import endpoint, request
from igw.epp.testing.waiting import wait_until
from igw.epp.workers import Peers, WorkerRole
from igw.epp.workers import peers as peers_module

POD = endpoint("pod-0-rank-0")


@dataclass
class Worker:
    prefix: ApproxPrefixCacheProducer
    inflight: InflightLoadProducer
    latency: OnlineLatencyProducer
    datastore: Datastore
    peers: Peers


async def _worker(directory: Path, index: int) -> Worker:
    prefix, inflight = ApproxPrefixCacheProducer(), InflightLoadProducer()
    latency = OnlineLatencyProducer(clock=time.monotonic)
    datastore = Datastore(collect=False)
    datastore.reconcile([POD.endpoint])
    plugins = {"prefix": prefix, "inflight": inflight, "latency": latency}
    peers = Peers(WorkerRole(index, 2, directory), plugins, datastore)
    await peers.start()
    return Worker(prefix, inflight, latency, datastore, peers)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Worker, Worker]]:
    a, b = await _worker(tmp_path, 0), await _worker(tmp_path, 1)
    yield a, b
    a.peers.close()
    b.peers.close()


def _sent_to_pod(worker: Worker, request_id: str) -> None:
    result = SchedulingResult({"default": ProfileResult((POD,))}, "default")
    worker.inflight.pre_request(
        request(request_id=request_id, size_bytes=400), CycleState(), result
    )


async def test_a_prefix_insert_is_matched_by_the_other_worker(pair: tuple[Worker, Worker]) -> None:
    a, b = pair
    assert a.prefix.on_insert is not None
    a.prefix.on_insert("pod-0-rank-0", [11, 22, 33], 100)
    await wait_until(lambda: b.prefix.index.match([11, 22, 33]) == {"pod-0-rank-0": 3})
    assert a.prefix.index.match([11]) == {}  # the sender's own index is its producer's business


async def test_in_flight_starts_and_finishes_reach_the_other_worker(
    pair: tuple[Worker, Worker],
) -> None:
    a, b = pair
    _sent_to_pod(a, "r1")
    await wait_until(lambda: b.inflight.tracker.load("pod-0-rank-0").requests == 1)
    assert b.inflight.tracker.load("pod-0-rank-0").tokens == 250  # 400 B x 0.25 x 2.5
    a.inflight.response_complete(request(request_id="r1"), POD.endpoint)
    await wait_until(lambda: b.inflight.tracker.load("pod-0-rank-0").requests == 0)


async def test_a_restarted_worker_has_its_old_requests_forgotten(
    tmp_path: Path, pair: tuple[Worker, Worker]
) -> None:
    a, b = pair
    _sent_to_pod(a, "r1")
    _sent_to_pod(a, "r2")
    await wait_until(lambda: b.inflight.tracker.load("pod-0-rank-0").requests == 2)
    a.peers.close()  # died with r1 and r2 in flight; its successor says HELLO
    successor = await _worker(tmp_path, 0)
    try:
        await wait_until(lambda: b.inflight.tracker.load("pod-0-rank-0").requests == 0)
    finally:
        successor.peers.close()


async def test_dispatches_are_replayed_in_the_other_ledger(pair: tuple[Worker, Worker]) -> None:
    a, b = pair
    a.latency.ledger.dispatch("pod-0-rank-0", time.monotonic(), 500, 0)
    await wait_until(lambda: b.latency.ledger.mean_tokens == 500)
    assert b.latency.ledger.load(POD, time.monotonic(), 0.001).dispatched == 1


async def test_the_scrapers_metrics_reach_the_other_datastore(pair: tuple[Worker, Worker]) -> None:
    a, b = pair
    assert a.datastore.on_metrics is not None  # worker 0 scrapes ...
    assert b.datastore.on_metrics is None  # ... and only worker 0
    scraped = Metrics(waiting=5, running=2, active_models=frozenset({"lora"}), updated_at=42.0)
    a.datastore.on_metrics(POD.endpoint, scraped)
    await wait_until(lambda: b.datastore.endpoints()[0].metrics == scraped)


async def test_a_scrape_of_an_endpoint_not_held_is_ignored(pair: tuple[Worker, Worker]) -> None:
    _, b = pair
    assert not b.datastore.apply_metrics("pod-0-rank-0", "10.9.9.9:8000", Metrics(waiting=9))
    assert not b.datastore.apply_metrics("other", POD.endpoint.hostport, Metrics(waiting=9))
    assert b.datastore.endpoints()[0].metrics == Metrics()


async def test_the_other_workers_answer_leadership_as_worker_0_says(
    pair: tuple[Worker, Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker 0 holds the pod's Lease; worker 1 answers health checks on the shared port as
    worker 0 last said, and as not leading once worker 0 has gone quiet."""
    a, b = pair
    monkeypatch.setattr(peers_module, "LEADER_STALE_S", 0.5)
    leading = [True]
    a.peers.say_leader(lambda: leading[0], every_s=0.05)
    await wait_until(b.peers.leading)
    leading[0] = False
    await wait_until(lambda: not b.peers.leading())
    leading[0] = True
    await wait_until(b.peers.leading)
    a.peers.close()  # worker 0 died holding the Lease: its last word goes stale
    await wait_until(lambda: not b.peers.leading())


async def test_only_worker_0_speaks_for_the_pods_leadership(tmp_path: Path) -> None:
    a, b = await _worker(tmp_path, 0), await _worker(tmp_path, 1)
    try:
        b.peers.say_leader(lambda: True, every_s=10.0)
        b.peers.flush()
        await wait_until(lambda: a.peers.received_ops >= 2)  # HELLO, then LEADER
        assert not a.peers.leading()
    finally:
        a.peers.close()
        b.peers.close()


async def test_a_peer_that_is_not_up_is_skipped(tmp_path: Path) -> None:
    alone = await _worker(tmp_path, 0)
    try:
        _sent_to_pod(alone, "r1")
        alone.peers.flush()
        assert alone.peers.sent_ops >= 1
        assert alone.peers.dropped == 0
    finally:
        alone.peers.close()
