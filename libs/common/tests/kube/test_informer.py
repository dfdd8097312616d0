"""The informer's contract against KMock, a Kubernetes API emulator served over real HTTP.

KMock quirks met here: a resource must be declared before a list answers; label and field
selectors are ignored (so what the informer hands over proves its own `accept` check);
`timeoutSeconds` is ignored; `resourceVersion` is always "..." and every watch replays the
existing objects as ADDED. The recovery tests against a real-behaving fake API server live in
`test_informer_recovery.py`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import kmock
import kubernetes
import pytest

from igw.common.kube import PODS, Informer, Kind, Timings, custom_kind, on_loop
from igw.common.testing.kube_changes import ChangeRecorder

POOLS = custom_kind("inference.networking.k8s.io", "v1", "inferencepools")
POOLS_RESOURCE = "inference.networking.k8s.io/v1/inferencepools"
POOLS_PATH = "/apis/inference.networking.k8s.io/v1/namespaces/{namespace}/inferencepools"
PODS_PATH = "/api/v1/namespaces/{namespace}/pods"
FAST = Timings(stop_poll_s=0.5, backoff_initial_s=0.05, backoff_max_s=0.5)

Obj = dict[str, Any]
StartInformer = Callable[..., Awaitable[Informer]]


async def wait_for(get: Callable[[], object], expected: object, timeout_s: float = 20.0) -> None:
    """Poll until `get()` returns `expected`; on timeout the assertion shows the last value."""
    deadline = time.monotonic() + timeout_s
    # Polling on purpose: the value is written by the informer's thread, there is no event to await.
    while (value := get()) != expected and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    assert value == expected


def manifest(kind: str, namespace: str, name: str, labels: dict[str, str] | None = None) -> Obj:
    api_version = "v1" if kind == "Pod" else "inference.networking.k8s.io/v1"
    metadata = {"name": name, "namespace": namespace, "labels": labels or {}}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": {}}


async def create(api: kmock.KubernetesEmulator, obj: Obj) -> None:
    namespace = obj["metadata"]["namespace"]
    path = (PODS_PATH if obj["kind"] == "Pod" else POOLS_PATH).format(namespace=namespace)
    async with api.post(path, json=obj) as response:
        assert response.status == 200, await response.text()


async def patch(api: kmock.KubernetesEmulator, path: str, body: Obj) -> None:
    async with api.patch(path, json=body) as response:
        assert response.status == 200, await response.text()


async def delete(api: kmock.KubernetesEmulator, path: str) -> None:
    async with api.delete(path) as response:
        assert response.status == 200, await response.text()


@pytest.fixture
def api(kmock: kmock.KubernetesEmulator) -> kmock.KubernetesEmulator:
    # KMock answers 404 for an undeclared resource until an object of it exists.
    kmock.resources["v1/pods"] = kmock.ResourceInfo(kind="Pod", namespaced=True)
    kmock.resources[POOLS_RESOURCE] = kmock.ResourceInfo(kind="InferencePool", namespaced=True)
    return kmock


@pytest.fixture
def api_client(api: kmock.KubernetesEmulator) -> Iterator[kubernetes.client.ApiClient]:
    configuration = kubernetes.client.Configuration()
    configuration.host = str(api.url).rstrip("/")
    client = kubernetes.client.ApiClient(configuration)
    yield client
    client.close()  # type: ignore[no-untyped-call]  # untyped client API


@pytest.fixture
def recorder() -> ChangeRecorder:
    return ChangeRecorder()


@pytest.fixture
async def start_informer(
    api_client: kubernetes.client.ApiClient, recorder: ChangeRecorder
) -> AsyncIterator[StartInformer]:
    started: list[Informer] = []

    async def start(kind: Kind = PODS, **options: Any) -> Informer:
        options.setdefault("timings", FAST)
        options.setdefault("on_synced", recorder.on_synced)
        informer = Informer(api_client, kind, recorder.on_change, **options)
        started.append(informer)
        informer.start()
        # The informer thread talks to KMock on this loop: never block the loop while waiting.
        assert await asyncio.to_thread(informer.wait_synced, 20.0)
        return informer

    yield start
    for informer in started:
        assert await asyncio.to_thread(informer.stop)


async def test_the_list_hands_over_every_object_then_says_synced(
    api: kmock.KubernetesEmulator, recorder: ChangeRecorder, start_informer: StartInformer
) -> None:
    await create(api, manifest("Pod", "ns", "a"))
    await create(api, manifest("Pod", "ns", "b"))

    informer = await start_informer(namespace="ns")

    assert informer.synced
    assert recorder.keys() == {"ns/a", "ns/b"}
    assert recorder.calls.index("synced") == 2  # after every object of the list
    assert recorder.state["ns/a"]["metadata"]["name"] == "a"  # the raw JSON, camelCase and all
    assert recorder.state["ns/a"]["kind"] == "Pod"


@pytest.mark.parametrize("kind", [pytest.param(PODS, id="core"), pytest.param(POOLS, id="custom")])
@pytest.mark.parametrize(
    "namespace", [pytest.param("team-a", id="one"), pytest.param(None, id="all")]
)
async def test_core_and_custom_kinds_in_one_namespace_or_all(
    api: kmock.KubernetesEmulator,
    recorder: ChangeRecorder,
    start_informer: StartInformer,
    kind: Kind,
    namespace: str | None,
) -> None:
    def in_scope(*keys: str) -> set[str]:
        return {key for key in keys if namespace is None or key.startswith(f"{namespace}/")}

    kind_name = "Pod" if kind == PODS else "InferencePool"
    await create(api, manifest(kind_name, "team-a", "a"))
    await create(api, manifest(kind_name, "team-b", "b"))
    await start_informer(kind, namespace=namespace)
    assert recorder.keys() == in_scope("team-a/a", "team-b/b")  # from the list

    await create(api, manifest(kind_name, "team-b", "d"))
    await create(api, manifest(kind_name, "team-a", "c"))

    await wait_for(recorder.keys, in_scope("team-a/a", "team-b/b", "team-a/c", "team-b/d"))


async def test_the_watch_follows_create_update_delete(
    api: kmock.KubernetesEmulator, recorder: ChangeRecorder, start_informer: StartInformer
) -> None:
    await start_informer(POOLS, namespace="ns")
    path = POOLS_PATH.format(namespace="ns") + "/pool"

    await create(api, manifest("InferencePool", "ns", "pool"))
    await wait_for(recorder.keys, {"ns/pool"})
    await patch(api, path, {"spec": {"targetPorts": [{"number": 8000}]}})
    await wait_for(
        lambda: recorder.state.get("ns/pool", {}).get("spec"), {"targetPorts": [{"number": 8000}]}
    )
    await delete(api, path)

    await wait_for(recorder.keys, set())
    assert recorder.calls[-1] == ("ns/pool", None)


def ignore(_key: str, _obj: Obj | None) -> None:
    pass


def labelled_ready(obj: Obj) -> bool:
    labels: dict[str, str] = obj["metadata"].get("labels", {})
    return labels.get("ready") == "true"


def named_pool_a(obj: Obj) -> bool:
    name: str = obj["metadata"]["name"]
    return name == "pool-a"


@pytest.mark.parametrize(
    ("selectors", "sent"),
    [
        pytest.param(
            {"label_selector": "ready=true", "accept": labelled_ready},
            ("labelSelector", "ready=true"),
            id="label-selector",
        ),
        pytest.param(
            {"field_selector": "metadata.name=pool-a", "accept": named_pool_a},
            ("fieldSelector", "metadata.name=pool-a"),
            id="field-selector",
        ),
    ],
)
async def test_what_the_server_did_not_filter_the_predicate_does(
    api: kmock.KubernetesEmulator,
    recorder: ChangeRecorder,
    start_informer: StartInformer,
    selectors: dict[str, Any],
    sent: tuple[str, str],
) -> None:
    path = POOLS_PATH.format(namespace="ns") + "/pool-a"
    await create(api, manifest("InferencePool", "ns", "pool-a", {"ready": "true"}))
    await create(api, manifest("InferencePool", "ns", "pool-b", {"ready": "false"}))
    await start_informer(POOLS, namespace="ns", **selectors)
    assert recorder.keys() == {"ns/pool-a"}

    await create(api, manifest("InferencePool", "ns", "pool-c", {"ready": "false"}))
    await patch(api, path, {"spec": {"seen": "yes"}})
    # Events arrive in order: once the patch is in, pool-c has been through the watch too.
    await wait_for(lambda: recorder.state["ns/pool-a"]["spec"], {"seen": "yes"})
    await delete(api, path)

    await wait_for(recorder.keys, set())
    assert recorder.changed_keys() == {"ns/pool-a"}  # never pool-b nor pool-c
    param, value = sent
    reads = [request for request in api if request.method == "GET"]  # what KMock served
    assert reads
    assert all(request.params.get(param) == value for request in reads)  # the server was asked


async def test_an_object_that_stops_passing_the_predicate_is_taken_back(
    api: kmock.KubernetesEmulator, recorder: ChangeRecorder, start_informer: StartInformer
) -> None:
    await create(api, manifest("Pod", "ns", "a", {"ready": "true"}))
    await start_informer(namespace="ns", accept=labelled_ready)
    assert recorder.keys() == {"ns/a"}

    await patch(
        api, PODS_PATH.format(namespace="ns") + "/a", {"metadata": {"labels": {"ready": "no"}}}
    )

    await wait_for(recorder.keys, set())


async def test_a_relist_takes_back_what_vanished_without_an_event(
    api: kmock.KubernetesEmulator, recorder: ChangeRecorder, start_informer: StartInformer
) -> None:
    await create(api, manifest("Pod", "ns", "a"))
    await create(api, manifest("Pod", "ns", "b"))
    await start_informer(namespace="ns")

    # Lose a deletion: the object vanishes from the server without a watch event...
    del api.objects["v1/pods", "ns", "b"]
    # ...and the next watch request expires (410 Gone), which forces a relist.
    failures = [kmock.KubernetesError(status=410, reason="Expired", message="too old")]

    async def expire_once(request: kmock.Request) -> Any:
        if failures:
            raise failures.pop()
        raise NotImplementedError  # fall through to KMock's own watch

    api[kmock.action.WATCH] << expire_once

    await wait_for(recorder.syncs, 2)
    assert failures == []  # healed by the relist the 410 caused, not by a watch event
    assert recorder.keys() == {"ns/a"}
    syncs = [i for i, call in enumerate(recorder.calls) if call == "synced"]
    assert recorder.calls[syncs[1] - 1] == ("ns/b", None)  # taken back by the relist


async def test_a_failing_consumer_is_healed_by_a_relist(
    api: kmock.KubernetesEmulator, api_client: kubernetes.client.ApiClient, recorder: ChangeRecorder
) -> None:
    await create(api, manifest("Pod", "ns", "a"))
    failures = [RuntimeError("consumer bug")]

    def on_change(key: str, obj: Obj | None) -> None:
        if failures:
            raise failures.pop()
        recorder.on_change(key, obj)

    informer = Informer(api_client, PODS, on_change, timings=FAST)
    informer.start()
    try:
        assert await asyncio.to_thread(informer.wait_synced, 20.0)
        assert failures == []
        assert recorder.keys() == {"ns/a"}
    finally:
        assert await asyncio.to_thread(informer.stop)


async def test_on_loop_runs_the_callbacks_on_the_event_loop_in_order(
    api: kmock.KubernetesEmulator, api_client: kubernetes.client.ApiClient, recorder: ChangeRecorder
) -> None:
    await create(api, manifest("Pod", "ns", "a"))
    loop = asyncio.get_running_loop()
    synced = asyncio.Event()

    def on_synced() -> None:
        recorder.on_synced()
        synced.set()  # not thread-safe: only correct because it runs on the loop

    informer = Informer(
        api_client,
        PODS,
        on_loop(loop, recorder.on_change),
        on_synced=on_loop(loop, on_synced),
        timings=FAST,
    )
    informer.start()
    try:
        await asyncio.wait_for(synced.wait(), 20.0)
        assert recorder.threads == {threading.get_ident()}
        assert recorder.calls[:2] == [("ns/a", recorder.state["ns/a"]), "synced"]
    finally:
        assert await asyncio.to_thread(informer.stop)


async def test_stop_returns_promptly_while_the_watch_is_idle(start_informer: StartInformer) -> None:
    informer = await start_informer(timings=Timings(stop_poll_s=30.0))
    await asyncio.sleep(0.3)  # let the watch open and go idle

    started = time.monotonic()
    stopped = await asyncio.to_thread(informer.stop)

    assert time.monotonic() - started < 2.0  # far below the 30 s read timeout
    assert stopped


async def test_stop_before_start_and_start_twice(api_client: kubernetes.client.ApiClient) -> None:
    assert Informer(api_client, PODS, ignore).stop(0.1)  # nothing to stop

    informer = Informer(api_client, PODS, ignore, timings=FAST)
    informer.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            informer.start()
    finally:
        assert await asyncio.to_thread(informer.stop)
