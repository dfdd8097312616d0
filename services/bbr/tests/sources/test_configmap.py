"""The ConfigMap source against a real KMock Kubernetes API over HTTP.

KMock quirks met here: the ConfigMap resource must be declared before a list answers (a real API
server always has it); label selectors are ignored (so the source's client-side label check is
what keeps unmanaged ConfigMaps out); `timeoutSeconds` is ignored (watches never end server-side);
`resourceVersion` is always "..." and every watch replays the existing objects as ADDED.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import kmock
import kubernetes
import pytest

from igw.bbr.adapters import BBR_MANAGED_LABEL, AdapterIndex
from igw.bbr.sources.configmap import ConfigMapSource

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
QWEN = "Qwen/Qwen3-0.6B"
MANAGED = {BBR_MANAGED_LABEL: "true"}
RESOURCE = "v1/configmaps"

StartSource = Callable[..., Awaitable[ConfigMapSource]]


async def wait_for(get: Callable[[], object], expected: object, timeout_s: float = 15.0) -> None:
    """Poll until `get()` returns `expected`; on timeout the assertion shows the last value."""
    deadline = time.monotonic() + timeout_s
    # Polling on purpose: the value is written by the source's thread, there is no event to await.
    while (value := get()) != expected and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    assert value == expected


def manifest(namespace: str, name: str, data: dict[str, str], labels: dict[str, str]) -> Any:
    metadata = {"name": name, "namespace": namespace, "labels": labels}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def adapters(base: str, *names: str) -> dict[str, str]:
    return {"baseModel": base, "adapters": "".join(f"- {name}\n" for name in names)}


async def create(
    api: kmock.KubernetesEmulator,
    namespace: str,
    name: str,
    data: dict[str, str],
    labels: dict[str, str] = MANAGED,
) -> None:
    body = manifest(namespace, name, data, labels)
    async with api.post(f"/api/v1/namespaces/{namespace}/configmaps", json=body) as response:
        assert response.status == 200, await response.text()


async def patch(api: kmock.KubernetesEmulator, namespace: str, name: str, body: Any) -> None:
    async with api.patch(f"/api/v1/namespaces/{namespace}/configmaps/{name}", json=body) as resp:
        assert resp.status == 200, await resp.text()


async def delete(api: kmock.KubernetesEmulator, namespace: str, name: str) -> None:
    async with api.delete(f"/api/v1/namespaces/{namespace}/configmaps/{name}") as response:
        assert response.status == 200, await response.text()


@pytest.fixture
def api(kmock: kmock.KubernetesEmulator) -> kmock.KubernetesEmulator:
    # KMock answers 404 for an undeclared resource until an object of it exists.
    kmock.resources[RESOURCE] = kmock.ResourceInfo(kind="ConfigMap", namespaced=True)
    return kmock


@pytest.fixture
def api_client(api: kmock.KubernetesEmulator) -> Iterator[kubernetes.client.ApiClient]:
    configuration = kubernetes.client.Configuration()
    configuration.host = str(api.url).rstrip("/")
    client = kubernetes.client.ApiClient(configuration)
    yield client
    client.close()  # type: ignore[no-untyped-call]  # untyped client API


@pytest.fixture
def index() -> AdapterIndex:
    return AdapterIndex()


@pytest.fixture
async def start_source(
    index: AdapterIndex, api_client: kubernetes.client.ApiClient
) -> AsyncIterator[StartSource]:
    started: list[ConfigMapSource] = []

    async def start(namespace: str | None = None, **options: Any) -> ConfigMapSource:
        options.setdefault("backoff_initial_s", 0.05)
        source = ConfigMapSource(index, api_client, namespace, **options)
        started.append(source)
        source.start()
        # The source thread talks to KMock on this loop: never block the loop while waiting.
        assert await asyncio.to_thread(source.wait_synced, 15.0)
        return source

    yield start
    for source in started:
        assert await asyncio.to_thread(source.stop)


async def test_the_initial_list_fills_the_index(
    api: kmock.KubernetesEmulator, index: AdapterIndex, start_source: StartSource
) -> None:
    await create(api, "ns", "llama", adapters(LLAMA, "sql-lora"))
    await create(api, "ns", "unmanaged", adapters(QWEN, "x"), labels={})

    source = await start_source()

    assert source.synced
    assert index.base_model_of("sql-lora") == LLAMA
    assert index.base_model_of("x") is None  # KMock ignores the selector; the source does not
    assert set(index.snapshot().entries) == {"ns/llama"}


async def test_the_watch_follows_create_update_delete(
    api: kmock.KubernetesEmulator, index: AdapterIndex, start_source: StartSource
) -> None:
    await start_source()

    await create(api, "ns", "llama", adapters(LLAMA, "sql-lora"))
    await wait_for(lambda: index.base_model_of("sql-lora"), LLAMA)

    await patch(api, "ns", "llama", {"data": adapters(LLAMA, "chat-lora")})
    await wait_for(lambda: index.base_model_of("chat-lora"), LLAMA)
    assert index.base_model_of("sql-lora") is None

    await delete(api, "ns", "llama")
    await wait_for(lambda: index.base_model_of(LLAMA), None)
    assert index.snapshot().entries == {}


async def test_configmaps_without_the_label_are_ignored(
    api: kmock.KubernetesEmulator, index: AdapterIndex, start_source: StartSource
) -> None:
    await start_source()

    await create(api, "ns", "other", adapters(QWEN, "x"), labels={BBR_MANAGED_LABEL: "false"})
    await create(api, "ns", "marker", adapters(LLAMA, "y"))
    await wait_for(lambda: index.base_model_of("y"), LLAMA)  # events arrive in order

    assert index.base_model_of("x") is None


async def test_losing_the_label_removes_the_configmap(
    api: kmock.KubernetesEmulator, index: AdapterIndex, start_source: StartSource
) -> None:
    await create(api, "ns", "llama", adapters(LLAMA, "sql-lora"))
    await start_source()

    await patch(api, "ns", "llama", {"metadata": {"labels": {BBR_MANAGED_LABEL: "false"}}})

    await wait_for(lambda: index.base_model_of("sql-lora"), None)


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [
        pytest.param("team-a", {"team-a/llama"}, id="one-namespace"),
        pytest.param(None, {"team-a/llama", "team-b/qwen"}, id="all-namespaces"),
    ],
)
async def test_namespace_restriction(
    api: kmock.KubernetesEmulator,
    index: AdapterIndex,
    start_source: StartSource,
    namespace: str | None,
    expected: set[str],
) -> None:
    await create(api, "team-a", "llama", adapters(LLAMA, "a"))
    await create(api, "team-b", "qwen", adapters(QWEN, "b"))
    await start_source(namespace)
    assert set(index.snapshot().entries) == expected  # from the list

    await create(api, "team-b", "qwen-2", adapters(QWEN, "c"))
    await create(api, "team-a", "llama-2", adapters(LLAMA, "d"))
    expected_after = (
        expected | {"team-a/llama-2"} | ({"team-b/qwen-2"} if namespace is None else set())
    )

    await wait_for(lambda: set(index.snapshot().entries), expected_after)  # from the watch


async def test_a_relist_after_a_watch_failure_removes_what_was_missed(
    api: kmock.KubernetesEmulator, index: AdapterIndex, start_source: StartSource
) -> None:
    await create(api, "ns", "llama", adapters(LLAMA, "x"))
    await create(api, "ns", "qwen", adapters(QWEN, "y"))
    await start_source(stop_poll_s=0.2)

    # Lose a deletion: the object vanishes from the server without a watch event...
    del api.objects[RESOURCE, "ns", "qwen"]
    # ...and the next watch request expires (410 Gone), which forces a relist.
    failures = [kmock.KubernetesError(status=410, reason="Expired", message="too old")]

    async def expire_once(request: kmock.Request) -> Any:
        if failures:
            raise failures.pop()
        raise NotImplementedError  # fall through to KMock's own watch

    api[kmock.action.WATCH] << expire_once

    await wait_for(lambda: index.base_model_of("y"), None)
    assert failures == []  # healed by the relist the 410 caused, not by a watch event
    assert index.base_model_of("x") == LLAMA


async def test_a_failing_list_is_retried_until_it_succeeds(
    api: kmock.KubernetesEmulator, index: AdapterIndex, api_client: kubernetes.client.ApiClient
) -> None:
    await create(api, "ns", "llama", adapters(LLAMA, "x"))
    failures = [kmock.KubernetesError(status=500, reason="Boom") for _ in range(2)]

    async def fail_twice(request: kmock.Request) -> Any:
        if failures:
            raise failures.pop()
        raise NotImplementedError

    api[kmock.action.LIST] << fail_twice
    source = ConfigMapSource(index, api_client, None, backoff_initial_s=0.05)
    source.start()
    try:
        assert not source.synced
        assert await asyncio.to_thread(source.wait_synced, 15.0)
        assert failures == []
        assert index.base_model_of("x") == LLAMA
    finally:
        await asyncio.to_thread(source.stop)


async def test_stop_returns_promptly_while_the_watch_is_idle(start_source: StartSource) -> None:
    source = await start_source()
    await asyncio.sleep(0.2)  # let the watch open and go idle

    started = time.monotonic()
    stopped = await asyncio.to_thread(source.stop)

    assert time.monotonic() - started < 1.5
    assert stopped  # the thread has ended
