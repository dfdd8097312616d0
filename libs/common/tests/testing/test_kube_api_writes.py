"""The fake kube-apiserver's writes: `put` identity, Lease optimistic concurrency, replace, the REST
verbs and their Status answers, the status subresource, and exact LISTs of older versions.

Through the official `kubernetes` client over real HTTP (every call in a worker thread, as it is
blocking), or raw aiohttp requests where the exact wire answer matters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, NamedTuple

import aiohttp
import kubernetes
import orjson
import pytest

from igw.common.testing.kube_api import FakeKubeApi, status_reason

_POOL_GROUP = "inference.networking.k8s.io"
_TIMEOUT = 30.0
_PODS = "/api/v1/namespaces/default/pods"
_POOLS = f"/apis/{_POOL_GROUP}/v1/namespaces/default/inferencepools"
_LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
_MERGE = "application/merge-patch+json"


async def _in_thread(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.wait_for(asyncio.to_thread(call, *args, **kwargs), _TIMEOUT)


async def test_put_keeps_identity_and_skips_no_op_writes(
    api: FakeKubeApi, make_pod: Callable[..., dict[str, Any]]
) -> None:
    created = api.put(make_pod("p", {"v": "1"}))
    same = api.put(make_pod("p", {"v": "1"}))
    changed = api.put(make_pod("p", {"v": "2"}))

    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert int(changed["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    for kept in ("uid", "creationTimestamp"):
        assert changed["metadata"][kept] == created["metadata"][kept]
    assert api.get("v1", "Pod", "p") == changed


async def test_lease_optimistic_concurrency(
    api: FakeKubeApi, client: kubernetes.client.ApiClient
) -> None:
    leases = kubernetes.client.CoordinationV1Api(client)
    body = kubernetes.client.V1Lease(
        metadata=kubernetes.client.V1ObjectMeta(name="epp-leader"),
        spec=kubernetes.client.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15),
    )
    created = await _in_thread(leases.create_namespaced_lease, "default", body)
    created.spec.holder_identity = "b"
    replaced = await _in_thread(leases.replace_namespaced_lease, "epp-leader", "default", created)
    created.spec.holder_identity = "c"  # still carries the first resourceVersion

    with pytest.raises(kubernetes.client.ApiException) as stale:
        await _in_thread(leases.replace_namespaced_lease, "epp-leader", "default", created)
    with pytest.raises(kubernetes.client.ApiException) as duplicate:
        await _in_thread(leases.create_namespaced_lease, "default", body)

    assert replaced.spec.holder_identity == "b"
    assert replaced.metadata.resource_version != created.metadata.resource_version
    assert (stale.value.status, status_reason(stale.value)) == (409, "Conflict")
    assert (duplicate.value.status, status_reason(duplicate.value)) == (409, "AlreadyExists")
    stored = api.get("coordination.k8s.io/v1", "Lease", "epp-leader")
    assert stored is not None
    assert stored["spec"]["holderIdentity"] == "b"


async def test_custom_resource_replace_requires_a_resource_version(
    api: FakeKubeApi,
    client: kubernetes.client.ApiClient,
    make_pool: Callable[[str], dict[str, Any]],
) -> None:
    objects = kubernetes.client.CustomObjectsApi(client)
    api.put(make_pool("pool"))
    unversioned = make_pool("pool")

    with pytest.raises(kubernetes.client.ApiException) as raised:
        await _in_thread(
            objects.replace_namespaced_custom_object,
            _POOL_GROUP,
            "v1",
            "default",
            "inferencepools",
            "pool",
            unversioned,
        )

    assert raised.value.status == 422


class _Call(NamedTuple):
    method: str
    path: str
    body: Any = None
    content_type: str = "application/json"


@pytest.mark.parametrize(
    ("call", "code", "answer"),
    [
        pytest.param(_Call("GET", f"{_PODS}/nope"), 404, "NotFound", id="get-missing"),
        pytest.param(_Call("GET", "/apis/x.io/v1/things"), 404, "NotFound", id="no-such-type"),
        pytest.param(
            _Call("GET", f"{_PODS}?labelSelector=a%20b"), 400, "BadRequest", id="bad-selector"
        ),
        pytest.param(
            _Call("GET", f"{_PODS}?resourceVersion=999"), 504, "Timeout", id="future-version"
        ),
        pytest.param(
            _Call(
                "POST",
                "/api/v1/pods",
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "n"}},
            ),
            405,
            "MethodNotAllowed",
            id="create-all-ns",
        ),
        pytest.param(_Call("POST", _PODS, {"metadata": {}}), 422, "Invalid", id="create-unnamed"),
        pytest.param(
            _Call("POST", _PODS, {"metadata": {"generateName": "g-"}}), 201, "g-", id="generate"
        ),
        pytest.param(
            _Call("POST", _PODS, {"metadata": {"name": "n", "resourceVersion": "1"}}),
            500,
            "InternalError",
            id="create-with-version",
        ),
        pytest.param(
            _Call("PUT", "/api/v1/namespaces/default/configmaps/new", {}),
            404,
            "NotFound",
            id="replace-missing",
        ),
        pytest.param(
            _Call("PUT", f"{_LEASES}/new", {"spec": {}}), 201, "new", id="lease-create-on-update"
        ),
        pytest.param(
            _Call("PUT", f"{_PODS}/p", {"metadata": {"name": "q"}}),
            400,
            "BadRequest",
            id="name-mismatch",
        ),
        pytest.param(_Call("DELETE", f"{_PODS}/p"), 200, "p", id="delete-answers-the-pod"),
        pytest.param(_Call("DELETE", f"{_POOLS}/pool"), 200, "Success", id="delete-answers-status"),
        pytest.param(
            _Call("DELETE", f"{_PODS}/p", {"preconditions": {"uid": "x"}}),
            409,
            "Conflict",
            id="delete-precondition",
        ),
        pytest.param(
            _Call("PATCH", f"{_POOLS}/pool", {"metadata": {"labels": {"a": "b"}}}, _MERGE),
            200,
            "pool",
            id="merge-patch",
        ),
        pytest.param(
            _Call("PATCH", f"{_POOLS}/pool", [], "application/json-patch+json"),
            415,
            "UnsupportedMediaType",
            id="json-patch",
        ),
    ],
)
async def test_rest_verbs_answer_as_kube_apiserver(
    api: FakeKubeApi,
    session: aiohttp.ClientSession,
    call: _Call,
    code: int,
    answer: str,
    *,
    make_pod: Callable[..., dict[str, Any]],
    make_pool: Callable[[str], dict[str, Any]],
) -> None:
    """`answer` is the Status reason on failure, else the answered object's name (or prefix)."""
    api.put(make_pod("p"))
    api.put(make_pool("pool"))
    data = orjson.dumps(call.body) if call.body is not None else None
    headers = {"Content-Type": call.content_type}

    url = f"{api.url}{call.path}"
    async with session.request(call.method, url, data=data, headers=headers) as response:
        reply = await response.json()

    assert response.status == code, reply
    if reply["kind"] == "Status":
        assert reply["reason" if code >= 400 else "status"] == answer
        assert reply.get("code", code) == code
    else:
        assert reply["metadata"]["name"].startswith(answer)


async def test_status_subresource_is_written_apart_from_the_object(
    api: FakeKubeApi, session: aiohttp.ClientSession, make_pool: Callable[[str], dict[str, Any]]
) -> None:
    stored = api.put(make_pool("pool"))
    url = f"{api.url}{_POOLS}/pool"
    status = {"status": {"parents": [{"parentRef": {"name": "gw"}}]}}
    spec = {"spec": {"targetPorts": [{"number": 9000}]}, **status}

    for path, patch in ((f"{url}/status", status), (url, spec)):
        async with session.patch(path, json=patch, headers={"Content-Type": _MERGE}) as response:
            assert response.status == 200, await response.text()

    pool = api.get(f"{_POOL_GROUP}/v1", "InferencePool", "pool")
    assert pool is not None
    assert pool["status"] == status["status"]
    assert pool["spec"]["targetPorts"] == [{"number": 9000}]
    # Only the spec change moves the generation.
    assert pool["metadata"]["generation"] == stored["metadata"]["generation"] + 1


async def test_exact_list_shows_the_state_at_an_older_version(
    api: FakeKubeApi, core: kubernetes.client.CoreV1Api, make_pod: Callable[..., dict[str, Any]]
) -> None:
    version = api.put(make_pod("a"))["metadata"]["resourceVersion"]
    api.put(make_pod("b"))
    api.delete("v1", "Pod", "a")

    then = await _in_thread(
        core.list_namespaced_pod,
        "default",
        resource_version=version,
        resource_version_match="Exact",
    )
    now = await _in_thread(core.list_namespaced_pod, "default")

    assert [pod.metadata.name for pod in then.items] == ["a"]
    assert then.metadata.resource_version == version
    assert [pod.metadata.name for pod in now.items] == ["b"]
