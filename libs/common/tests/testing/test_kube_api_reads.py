"""The fake kube-apiserver's reads: LIST with selectors, WATCH (resume, selection, 410 Expired,
clean ends and bookmarks), `fail_next` and `restart`.

Through the official `kubernetes` client over real HTTP: it is blocking, so every call runs in a
worker thread. The wire format itself (what the client hides, like list items' `kind`) is checked
with raw aiohttp requests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import aiohttp
import kubernetes
import orjson
import pytest
import urllib3

from igw.common.testing.kube_api import FakeKubeApi, status_reason

_POOL_GROUP = "inference.networking.k8s.io"
_TIMEOUT = 30.0
_PODS = "/api/v1/namespaces/default/pods"


async def _in_thread(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.wait_for(asyncio.to_thread(call, *args, **kwargs), _TIMEOUT)


async def _watch_lines(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=_TIMEOUT)) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        return [orjson.loads(line) async for line in response.content if line.strip()]


def _collect(
    core: kubernetes.client.CoreV1Api, count: int, started: threading.Event | None = None, **kw: Any
) -> list[tuple[str, str, str]]:
    """Watch pods until `count` events arrived; (type, name, resourceVersion) of each."""
    watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]  # untyped client API
    events: list[tuple[str, str, str]] = []
    stream = watch.stream(  # type: ignore[no-untyped-call]  # untyped client API
        core.list_namespaced_pod, "default", timeout_seconds=25, **kw
    )
    for event in stream:
        metadata = event["object"].metadata
        events.append((event["type"], metadata.name, metadata.resource_version))
        if started is not None:
            started.set()
        if len(events) == count:
            watch.stop()  # type: ignore[no-untyped-call]  # untyped client API
    return events


@pytest.mark.parametrize(
    ("label_selector", "field_selector", "expected"),
    [
        pytest.param("app=a", "", ["a1", "a2"], id="equals"),
        pytest.param("app!=a", "", ["b1", "none"], id="not-equals-includes-unlabelled"),
        pytest.param("app in (a,b),tier", "", ["a2", "b1"], id="set-and-exists"),
        pytest.param("app notin (a)", "", ["b1", "none"], id="notin-includes-unlabelled"),
        pytest.param("!app", "", ["none"], id="does-not-exist"),
        pytest.param("", "metadata.name=a2", ["a2"], id="field-name"),
        pytest.param("app=a", "spec.nodeName!=n1", ["a2"], id="label-and-pod-field"),
    ],
)
async def test_list_applies_selectors(
    api: FakeKubeApi,
    core: kubernetes.client.CoreV1Api,
    label_selector: str,
    field_selector: str,
    expected: list[str],
    *,
    make_pod: Callable[..., dict[str, Any]],
) -> None:
    api.put(make_pod("a1", {"app": "a"}, nodeName="n1"))
    api.put(make_pod("a2", {"app": "a", "tier": "gpu"}, nodeName="n2"))
    api.put(make_pod("b1", {"app": "b", "tier": "gpu"}))
    api.put(make_pod("none"))
    api.put(
        {**make_pod("elsewhere", {"app": "a"}), "metadata": {"name": "x", "namespace": "other"}}
    )

    pods = await _in_thread(
        core.list_namespaced_pod,
        "default",
        label_selector=label_selector,
        field_selector=field_selector,
    )

    assert [pod.metadata.name for pod in pods.items] == expected


async def test_list_reports_kind_and_the_global_resource_version(
    api: FakeKubeApi,
    session: aiohttp.ClientSession,
    make_pod: Callable[..., dict[str, Any]],
    make_pool: Callable[[str], dict[str, Any]],
) -> None:
    pod = api.put(make_pod("p"))
    pool = api.put(make_pool("pool"))
    api.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}})

    async with session.get(f"{api.url}/api/v1/pods") as response:
        pods = await response.json()
    async with session.get(f"{api.url}/apis/{_POOL_GROUP}/v1/inferencepools") as response:
        pools = await response.json()

    assert (pod["metadata"]["resourceVersion"], pool["metadata"]["resourceVersion"]) == ("1", "2")
    assert pods["kind"] == "PodList"
    assert pods["apiVersion"] == "v1"
    assert pods["metadata"]["resourceVersion"] == "3"  # the global counter, not the pods' latest
    # Built-in list items carry no TypeMeta on the real server; custom resources' items do.
    assert "kind" not in pods["items"][0]
    assert pools["kind"] == "InferencePoolList"
    assert pools["items"][0]["kind"] == "InferencePool"
    assert pools["items"][0]["apiVersion"] == f"{_POOL_GROUP}/v1"


async def test_watch_resumes_with_added_modified_deleted_in_order(
    api: FakeKubeApi, core: kubernetes.client.CoreV1Api, make_pod: Callable[..., dict[str, Any]]
) -> None:
    listed = await _in_thread(core.list_namespaced_pod, "default")
    since = listed.metadata.resource_version
    versions = [api.put(make_pod("p", {"v": "1"}))["metadata"]["resourceVersion"]]
    started = threading.Event()
    watching = asyncio.ensure_future(_in_thread(_collect, core, 3, started, resource_version=since))
    # The first event replays from history; the rest arrive live.
    assert await asyncio.to_thread(started.wait, _TIMEOUT)
    modified = await asyncio.to_thread(api.put, make_pod("p", {"v": "2"}))  # put() is thread-safe
    versions.append(modified["metadata"]["resourceVersion"])
    api.delete("v1", "Pod", "p")

    events = await watching

    assert [(kind, name) for kind, name, _ in events] == [
        ("ADDED", "p"),
        ("MODIFIED", "p"),
        ("DELETED", "p"),
    ]
    assert [version for _, _, version in events][:2] == versions
    assert int(events[2][2]) > int(versions[1])  # a deletion takes its own resourceVersion


async def test_watch_without_version_starts_with_current_objects(
    api: FakeKubeApi, core: kubernetes.client.CoreV1Api, make_pod: Callable[..., dict[str, Any]]
) -> None:
    api.put(make_pod("b"))
    api.put(make_pod("a"))

    events = await _in_thread(_collect, core, 2)

    assert [(kind, name) for kind, name, _ in events] == [("ADDED", "a"), ("ADDED", "b")]


async def test_selected_watch_sees_objects_enter_and_leave_the_selection(
    api: FakeKubeApi, core: kubernetes.client.CoreV1Api, make_pod: Callable[..., dict[str, Any]]
) -> None:
    since = api.put(make_pod("p", {"app": "other"}))["metadata"]["resourceVersion"]
    api.put(make_pod("p", {"app": "mine"}))
    api.put(make_pod("p", {"app": "mine", "extra": "x"}))
    api.put(make_pod("p", {"app": "other"}))

    events = await _in_thread(_collect, core, 3, resource_version=since, label_selector="app=mine")

    assert [kind for kind, _, _ in events] == ["ADDED", "MODIFIED", "DELETED"]


async def test_watch_from_compacted_history_raises_410(
    api: FakeKubeApi,
    core: kubernetes.client.CoreV1Api,
    session: aiohttp.ClientSession,
    make_pod: Callable[..., dict[str, Any]],
) -> None:
    since = api.put(make_pod("p", {"v": "1"}))["metadata"]["resourceVersion"]
    api.put(make_pod("p", {"v": "2"}))
    api.compact()

    with pytest.raises(kubernetes.client.ApiException) as raised:
        await _in_thread(_collect, core, 1, resource_version=since)
    lines = await _watch_lines(
        session, f"{api.url}/api/v1/namespaces/default/pods?watch=1&resourceVersion={since}"
    )

    assert raised.value.status == 410
    assert lines == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {since} ({api.resource_version})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]


@pytest.mark.parametrize(
    "by_timeout", [pytest.param(False, id="end_watches"), pytest.param(True, id="timeoutSeconds")]
)
async def test_ended_watch_closes_cleanly_with_a_bookmark(
    api: FakeKubeApi,
    session: aiohttp.ClientSession,
    by_timeout: bool,
    make_pod: Callable[..., dict[str, Any]],
) -> None:
    api.put(make_pod("p"))
    query = "watch=True&allowWatchBookmarks=true" + ("&timeoutSeconds=1" if by_timeout else "")
    limit = aiohttp.ClientTimeout(total=_TIMEOUT)

    async with session.get(f"{api.url}{_PODS}?{query}", timeout=limit) as response:
        first = orjson.loads(await response.content.readline())
        if not by_timeout:
            api.end_watches()
        rest = [orjson.loads(line) async for line in response.content if line.strip()]

    assert first["type"] == "ADDED"
    assert [line["type"] for line in rest] == ["BOOKMARK"]
    assert rest[0]["object"] == {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": api.resource_version},
    }


async def test_streaming_list_marks_the_end_of_its_initial_events(
    api: FakeKubeApi, session: aiohttp.ClientSession, make_pod: Callable[..., dict[str, Any]]
) -> None:
    api.put(make_pod("p"))
    query = (
        "watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true&timeoutSeconds=1"
    )

    lines = await _watch_lines(session, f"{api.url}{_PODS}?{query}")

    assert [line["type"] for line in lines] == ["ADDED", "BOOKMARK", "BOOKMARK"]
    annotations = lines[1]["object"]["metadata"]["annotations"]
    assert annotations == {"k8s.io/initial-events-end": "true"}


async def test_fail_next_answers_the_status_then_recovers(
    api: FakeKubeApi, core: kubernetes.client.CoreV1Api
) -> None:
    api.fail_next(2)

    for _ in range(2):
        with pytest.raises(kubernetes.client.ApiException) as raised:
            await _in_thread(core.list_namespaced_pod, "default")
        assert raised.value.status == 503
        assert status_reason(raised.value) == "ServiceUnavailable"
    pods = await _in_thread(core.list_namespaced_pod, "default")

    assert pods.items == []


async def test_restart_drops_open_watches_and_serves_again_on_the_same_url(
    api: FakeKubeApi, core: kubernetes.client.CoreV1Api, make_pod: Callable[..., dict[str, Any]]
) -> None:
    api.put(make_pod("p"))
    url = api.url
    started = threading.Event()
    watching = asyncio.ensure_future(_in_thread(_collect, core, 2, started))
    assert await asyncio.to_thread(started.wait, _TIMEOUT)

    await api.restart()

    with pytest.raises(urllib3.exceptions.ProtocolError):
        await watching
    after = api.put(make_pod("q"))
    pods = await _in_thread(core.list_namespaced_pod, "default")
    assert api.url == url
    assert [pod.metadata.name for pod in pods.items] == ["p", "q"]
    assert after["metadata"]["resourceVersion"] == "2"  # the counter survived
