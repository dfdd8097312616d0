"""PoolState: level-triggered endpoints from the pool and its pods, and readiness."""

from __future__ import annotations

from collections.abc import Sequence

from igw.epp.discovery.pool import PoolSpec
from igw.epp.discovery.pool_state import PoolState
from igw.epp.endpoints import Endpoint
from igw.epp.testing.kube_objects import inference_pool, pod

POOL = inference_pool("p", {"app": "vllm"}, [8000])


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def reconcile(self, endpoints: Sequence[Endpoint]) -> None:
        self.calls.append([e.name for e in endpoints])


def state_with_pods(*names: str) -> tuple[PoolState, Recorder]:
    target = Recorder()
    state = PoolState(target)
    state.reconcile_pool(POOL)
    for i, name in enumerate(names):
        state.reconcile_pod(f"ns/{name}", pod(name, f"10.0.0.{i + 1}", {"app": "vllm"}))
    state.pods_listed()
    return state, target


def test_ready_once_the_pool_is_known_and_its_pods_listed() -> None:
    state = PoolState(Recorder())
    assert not state.ready
    state.reconcile_pool(POOL)
    assert not state.ready
    state.pods_listed()
    assert state.ready


def test_pods_seen_before_the_pool_are_served_once_it_arrives() -> None:
    target = Recorder()
    state = PoolState(target)
    state.reconcile_pod("ns/a", pod("a", "10.0.0.1", {"app": "vllm"}))
    assert target.calls == []
    state.reconcile_pool(POOL)
    assert target.calls == [["a-rank-0"]]


def test_each_pod_change_reaches_the_datastore_once() -> None:
    state, target = state_with_pods("a", "b")
    assert target.calls == [["a-rank-0"], ["a-rank-0", "b-rank-0"]]
    state.reconcile_pod("ns/a", pod("a", "10.0.0.1", {"app": "vllm"}, ready=False))
    state.reconcile_pod("ns/b", pod("b", "10.0.0.2", {"app": "other"}))
    state.reconcile_pod("ns/b", pod("b", "10.0.0.2", {"app": "vllm"}))
    state.reconcile_pod("ns/b", None)
    assert target.calls[2:] == [["b-rank-0"], [], ["b-rank-0"], []]


def test_replays_change_nothing() -> None:
    state, target = state_with_pods("a")
    calls = len(target.calls)
    state.reconcile_pool(POOL)
    state.reconcile_pod("ns/a", pod("a", "10.0.0.1", {"app": "vllm"}))
    state.pods_listed()
    assert len(target.calls) == calls


def test_an_ip_or_label_change_is_published() -> None:
    state, _ = state_with_pods("a")
    state.reconcile_pod("ns/a", pod("a", "10.0.0.9", {"app": "vllm", "tier": "x"}))
    assert state.endpoints[0].address == "10.0.0.9"
    assert state.endpoints[0].labels == {"app": "vllm", "tier": "x"}


def test_a_selector_or_port_change_rejudges_every_known_pod() -> None:
    target = Recorder()
    state = PoolState(target)
    state.reconcile_pool(POOL)
    state.reconcile_pod("ns/a", pod("a", "10.0.0.1", {"app": "vllm"}))
    state.reconcile_pod("ns/b", pod("b", "10.0.0.2", {"app": "sglang"}))
    state.reconcile_pool(inference_pool("p", {"app": "sglang"}, [8000, 8001]))
    assert [e.name for e in state.endpoints] == ["b-rank-0", "b-rank-1"]


def test_a_deleted_pool_clears_the_datastore_and_readiness_and_recreating_it_recovers() -> None:
    state, target = state_with_pods("a")
    state.reconcile_pool(None)
    assert (target.calls[-1], state.ready) == ([], False)
    state.reconcile_pool(POOL)
    assert (target.calls[-1], state.ready) == (["a-rank-0"], True)


def test_a_pool_the_parsers_cannot_speak_is_not_ready() -> None:
    state, _ = state_with_pods("a")
    state.reconcile_pool(
        inference_pool("p", {"app": "vllm"}, [8000], app_protocol="kubernetes.io/h2c")
    )
    assert not state.ready


def test_standalone_mode_has_a_fixed_pool_and_ignores_pool_objects() -> None:
    target = Recorder()
    fixed = PoolSpec("epp", "ns", {"app": "vllm"}, (8000,))
    state = PoolState(target, standalone=fixed)
    state.reconcile_pool(None)
    state.reconcile_pod("ns/a", pod("a", "10.0.0.1", {"app": "vllm"}))
    state.pods_listed()
    assert state.ready
    assert target.calls == [["a-rank-0"]]
