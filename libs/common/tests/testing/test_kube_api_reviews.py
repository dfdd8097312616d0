"""The fake kube-apiserver's TokenReview, SubjectAccessReview and discovery documents.

Through the official `kubernetes` client over real HTTP; it is blocking, so every call runs in a
worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from igw.common.testing.kube_api import DEFAULT_RESOURCES, FakeKubeApi

_POOL_GROUP = "inference.networking.k8s.io"
_TIMEOUT = 30.0


async def _in_thread(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.wait_for(asyncio.to_thread(call, *args, **kwargs), _TIMEOUT)


async def test_token_review_authenticates_known_tokens(
    api: FakeKubeApi, client: kubernetes.client.ApiClient
) -> None:
    api.tokens["good"] = "system:serviceaccount:monitoring:prometheus"
    authentication = kubernetes.client.AuthenticationV1Api(client)

    async def review(token: str) -> Any:
        body = kubernetes.client.V1TokenReview(
            spec=kubernetes.client.V1TokenReviewSpec(token=token)
        )
        return (await _in_thread(authentication.create_token_review, body)).status

    known, unknown = await review("good"), await review("bad")

    assert known.authenticated is True
    assert known.user.username == "system:serviceaccount:monitoring:prometheus"
    assert not unknown.authenticated
    assert unknown.user.username is None


@pytest.mark.parametrize(
    ("user", "path", "allowed"),
    [
        pytest.param("prometheus", "/metrics", True, id="granted"),
        pytest.param("prometheus", "/debug", False, id="other-path"),
        pytest.param("intruder", "/metrics", False, id="other-user"),
    ],
)
async def test_subject_access_review_answers_from_allowed(
    api: FakeKubeApi, client: kubernetes.client.ApiClient, user: str, path: str, allowed: bool
) -> None:
    api.allowed.add(("prometheus", "get", "/metrics"))
    attributes = kubernetes.client.V1NonResourceAttributes(path=path, verb="get")
    spec = kubernetes.client.V1SubjectAccessReviewSpec(
        user=user, non_resource_attributes=attributes
    )
    body = kubernetes.client.V1SubjectAccessReview(spec=spec)

    answer = await _in_thread(
        kubernetes.client.AuthorizationV1Api(client).create_subject_access_review, body
    )

    assert answer.status.allowed is allowed
    assert answer.spec.non_resource_attributes.path == path  # the spec comes back as posted


async def test_discovery_lists_the_crd_groups(client: kubernetes.client.ApiClient) -> None:
    groups = await _in_thread(kubernetes.client.ApisApi(client).get_api_versions)
    resources = await _in_thread(
        kubernetes.client.CustomObjectsApi(client).get_api_resources, _POOL_GROUP, "v1"
    )
    version = await _in_thread(kubernetes.client.VersionApi(client).get_code)

    names = {group.name: group.preferred_version.version for group in groups.groups}
    assert names[_POOL_GROUP] == "v1"
    assert names["inference.networking.x-k8s.io"] == "v1alpha2"
    assert names["coordination.k8s.io"] == "v1"
    pools = next(r for r in resources.resources if r.name == "inferencepools")
    assert (pools.kind, pools.namespaced) == ("InferencePool", True)
    assert {"list", "watch"} <= set(pools.verbs)
    assert version.major == "1"


async def test_a_crd_left_out_of_the_table_is_not_discovered(tmp_path: Path) -> None:
    without = [r for r in DEFAULT_RESOURCES if r.group != _POOL_GROUP]
    async with FakeKubeApi(resources=without) as api:
        with api.api_client(tmp_path / "kubeconfig") as client:
            objects = kubernetes.client.CustomObjectsApi(client)
            with pytest.raises(kubernetes.client.ApiException) as raised:
                await _in_thread(objects.get_api_resources, _POOL_GROUP, "v1")

    assert raised.value.status == 404
