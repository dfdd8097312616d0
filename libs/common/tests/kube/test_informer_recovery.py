"""The informer through API trouble, against `FakeKubeApi` (real resourceVersions, 410, restarts).

Each test drives the official client, configured from a kubeconfig by `load_kube_client()`, and
checks what a consumer would notice: the state its callbacks built, and the order of the calls
(`+key` handed over, `-key` taken back, `synced`). The fake runs on the test's event loop and the
informer in its thread, so the test only waits by awaiting.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import structlog

from igw.common.kube import PODS, Informer, Kind, Timings, custom_kind, load_kube_client
from igw.common.testing.kube_api import FakeKubeApi
from igw.common.testing.kube_changes import ChangeRecorder

FAST = Timings(stop_poll_s=0.5, backoff_initial_s=0.05, backoff_max_s=0.5)
POOLS = custom_kind("inference.networking.k8s.io", "v1", "inferencepools")
PODS_PATH = "/api/v1/namespaces/default/pods"

Obj = dict[str, Any]
Logs = list[MutableMapping[str, Any]]
StartInformer = Callable[..., Awaitable[Informer]]


async def wait_for(get: Callable[[], object], expected: object, timeout_s: float = 30.0) -> None:
    """Poll until `get()` returns `expected`; on timeout the assertion shows the last value."""
    deadline = time.monotonic() + timeout_s
    # Polling on purpose: the value is written by the informer's thread, there is no event to await.
    while (value := get()) != expected and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    assert value == expected


def pod(name: str, **labels: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}}


def pool(name: str, port: int = 8000) -> Obj:
    return {
        "apiVersion": "inference.networking.k8s.io/v1",
        "kind": "InferencePool",
        "metadata": {"name": name},
        "spec": {"targetPorts": [{"number": port}]},
    }


async def watch_open(api: FakeKubeApi) -> None:
    """Wait until the informer's watch is registered (the fake does so as the request arrives)."""
    await wait_for(lambda: any("watch=true" in query for _, _, query in api.requests), True)


def events(logs: Logs, name: str) -> list[MutableMapping[str, Any]]:
    return [entry for entry in list(logs) if entry["event"] == name]


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeApi]:
    async with FakeKubeApi() as server:
        yield server


@pytest.fixture
def api_client(
    api: FakeKubeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[kubernetes.client.ApiClient]:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(api.kubeconfig(tmp_path / "kubeconfig")))
    client = load_kube_client()
    yield client
    client.close()  # type: ignore[no-untyped-call]  # untyped client API


@pytest.fixture
def logs() -> Iterator[Logs]:
    with structlog.testing.capture_logs() as captured:
        yield captured


@pytest.fixture
def recorder() -> ChangeRecorder:
    return ChangeRecorder()


@pytest.fixture
async def start_informer(
    api_client: kubernetes.client.ApiClient, recorder: ChangeRecorder, logs: Logs
) -> AsyncIterator[StartInformer]:
    started: list[Informer] = []

    async def start(kind: Kind = PODS, *, wait: bool = True, **options: Any) -> Informer:
        options.setdefault("timings", FAST)
        options.setdefault("on_synced", recorder.on_synced)
        options.setdefault("namespace", "default" if kind.namespaced else None)
        informer = Informer(api_client, kind, recorder.on_change, **options)
        started.append(informer)
        informer.start()
        # The informer talks to the fake on this loop: never block the loop while waiting.
        assert not wait or await asyncio.to_thread(informer.wait_synced, 30.0)
        return informer

    yield start
    for informer in started:
        assert await asyncio.to_thread(informer.stop)


async def test_an_expired_watch_relists_and_loses_nothing(
    api: FakeKubeApi, recorder: ChangeRecorder, start_informer: StartInformer, logs: Logs
) -> None:
    listed, release = threading.Event(), threading.Event()

    def on_synced() -> None:  # holds the informer between its first list and its watch
        recorder.on_synced()
        if not listed.is_set():
            listed.set()
            release.wait(30.0)

    api.put(pod("a"))
    api.put(pod("b"))
    await start_informer(on_synced=on_synced, wait=False)
    assert await asyncio.to_thread(listed.wait, 30.0)
    listed_at = api.resource_version

    api.put(pod("a", role="changed"))
    api.delete("v1", "Pod", "b")
    api.put(pod("c"))
    api.compact()  # the watch from the list's resourceVersion now answers 410 Expired
    release.set()

    await wait_for(recorder.syncs, 2)
    assert recorder.since_first_sync() == ["+default/a", "+default/c", "-default/b", "synced"]
    assert recorder.state["default/a"]["metadata"]["labels"] == {"role": "changed"}
    assert events(logs, "informer.watch_expired")
    assert any(
        f"resourceVersion={listed_at}" in query and "watch=true" in query
        for _, path, query in api.requests
    )

    api.put(pod("d"))  # the new watch runs from the relist
    await wait_for(recorder.keys, {"default/a", "default/c", "default/d"})


async def test_a_failing_api_server_is_retried_with_growing_delays(
    api: FakeKubeApi, recorder: ChangeRecorder, start_informer: StartInformer, logs: Logs
) -> None:
    api.put(pod("a"))
    api.fail_next(5)  # 503 Service Unavailable
    started = time.monotonic()

    informer = await start_informer(
        timings=Timings(backoff_initial_s=0.1, backoff_max_s=2.0), wait=False
    )

    assert await asyncio.to_thread(informer.wait_synced, 30.0)
    # Five waits of at least half of 0.1, 0.2, 0.4, 0.8 and 1.6 s: jittered, never skipped.
    assert time.monotonic() - started >= 1.5
    delays = [entry["retry_in_s"] for entry in events(logs, "informer.error")]
    assert len(delays) == 5
    assert delays == sorted(delays)  # each delay at least the previous one's ceiling
    assert events(logs, "informer.recovered")
    lists = [query for method, path, query in api.requests if path == PODS_PATH]
    assert len(lists) >= 6
    assert recorder.keys() == {"default/a"}


async def test_the_last_known_state_outlives_an_outage_and_the_relist_fixes_it(
    api: FakeKubeApi, recorder: ChangeRecorder, start_informer: StartInformer
) -> None:
    api.put(pod("a"))
    await start_informer(timings=Timings(stop_poll_s=30.0, backoff_initial_s=0.05))
    await watch_open(api)

    api.fail_next(3)  # every request of the next relists fails...
    api.end_watches()  # ...which the end of the watch starts at once
    api.put(pod("b"))
    api.delete("v1", "Pod", "a")

    await wait_for(recorder.syncs, 2)
    # Nothing taken back while the API failed; the first good relist says what changed.
    assert recorder.since_first_sync() == ["+default/b", "-default/a", "synced"]


@pytest.mark.parametrize("outage", ["restart", "down-for-a-while"])
async def test_an_api_server_restart_is_survived(
    api: FakeKubeApi,
    recorder: ChangeRecorder,
    start_informer: StartInformer,
    logs: Logs,
    outage: str,
) -> None:
    api.put(pod("a"))
    api.put(pod("b"))
    await start_informer(timings=Timings(stop_poll_s=30.0, backoff_initial_s=0.05))
    await watch_open(api)  # else a watch opened after the outage would replay what it missed

    if outage == "restart":
        await api.restart()  # every connection dropped mid-stream, then back on the same port
        api.put(pod("c"))
        api.delete("v1", "Pod", "b")
    else:
        await api.stop()
        api.put(pod("c"))
        api.delete("v1", "Pod", "b")
        # Connection refused, again and again, until the server is back.
        await wait_for(lambda: len(events(logs, "informer.error")) >= 3, True)
        await api.start()

    await wait_for(recorder.syncs, 2)
    assert recorder.since_first_sync() == ["+default/a", "+default/c", "-default/b", "synced"]
    assert events(logs, "informer.recovered")
    api.put(pod("d"))
    await wait_for(recorder.keys, {"default/a", "default/c", "default/d"})


async def test_an_object_leaving_the_label_selector_is_taken_back(
    api: FakeKubeApi, recorder: ChangeRecorder, start_informer: StartInformer
) -> None:
    def ready(obj: Obj) -> bool:
        labels: dict[str, str] = obj["metadata"].get("labels", {})
        return labels.get("ready") == "true"

    api.put(pod("a", ready="true"))
    api.put(pod("b", ready="false"))
    await start_informer(label_selector="ready=true", accept=ready)
    assert recorder.keys() == {"default/a"}

    api.put(pod("a", ready="false"))  # the server's watch says DELETED
    await wait_for(recorder.keys, set())
    api.put(pod("a", ready="true"))  # and ADDED again
    await wait_for(recorder.keys, {"default/a"})


async def test_one_custom_object_by_field_selector(
    api: FakeKubeApi, recorder: ChangeRecorder, start_informer: StartInformer
) -> None:
    api.put(pool("pool-a"))
    api.put(pool("pool-b"))
    await start_informer(POOLS, field_selector="metadata.name=pool-a")
    assert recorder.keys() == {"default/pool-a"}
    assert recorder.state["default/pool-a"]["kind"] == "InferencePool"

    api.put(pool("pool-b", port=9000))
    api.put(pool("pool-a", port=9000))
    await wait_for(
        lambda: recorder.state["default/pool-a"]["spec"]["targetPorts"][0]["number"], 9000
    )
    api.delete("inference.networking.k8s.io/v1", "InferencePool", "pool-a")
    await wait_for(recorder.keys, set())
    assert "+default/pool-b" not in recorder.trace


async def test_a_watch_the_server_ends_is_followed_by_a_relist(
    api: FakeKubeApi, recorder: ChangeRecorder, start_informer: StartInformer, logs: Logs
) -> None:
    api.put(pod("a"))
    await start_informer(timings=Timings(stop_poll_s=30.0))
    await watch_open(api)

    api.end_watches()  # as its timeoutSeconds would

    await wait_for(recorder.syncs, 2)
    assert not events(logs, "informer.error")
    api.put(pod("b"))
    await wait_for(recorder.keys, {"default/a", "default/b"})


@pytest.mark.parametrize("state", ["watching", "backing-off"])
async def test_stop_is_prompt(
    api: FakeKubeApi, start_informer: StartInformer, logs: Logs, state: str
) -> None:
    if state == "watching":
        informer = await start_informer(timings=Timings(stop_poll_s=30.0))
        await asyncio.sleep(0.3)  # let the watch open and go idle
    else:
        api.fail_next(1000)
        timings = Timings(backoff_initial_s=30.0, backoff_max_s=60.0)
        informer = await start_informer(timings=timings, wait=False)
        await wait_for(lambda: bool(events(logs, "informer.error")), True)

    started = time.monotonic()
    stopped = await asyncio.to_thread(informer.stop)

    assert stopped
    assert time.monotonic() - started < 2.0  # far below the 30 s read timeout or backoff
