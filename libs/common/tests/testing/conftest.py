"""Fixtures the tests of the fake kube-apiserver (`igw.common.testing.kube_api`) share.

A started `FakeKubeApi`, official clients reaching it through its kubeconfig, a raw aiohttp
session for what the client hides, and builders of the manifests the tests store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes
import pytest

from igw.common.testing.kube_api import FakeKubeApi

_POOL_GROUP = "inference.networking.k8s.io"


def _pod(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "default", "labels": labels or {}}
    containers = [{"name": "model-server", "image": "vllm"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {"containers": containers, **spec},
    }


def _pool(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{_POOL_GROUP}/v1",
        "kind": "InferencePool",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"targetPorts": [{"number": 8000}], "selector": {"matchLabels": {"app": "m"}}},
    }


@pytest.fixture
def make_pod() -> Callable[..., dict[str, Any]]:
    """`make_pod(name, labels=None, **spec)`: a one-container Pod in "default", `spec` merged."""
    return _pod


@pytest.fixture
def make_pool() -> Callable[[str], dict[str, Any]]:
    """`make_pool(name)`: a v1 InferencePool in "default", port 8000, selecting `app=m`."""
    return _pool


@pytest.fixture
async def api() -> AsyncIterator[FakeKubeApi]:
    async with FakeKubeApi() as started:
        yield started


@pytest.fixture
def client(api: FakeKubeApi, tmp_path: Path) -> Iterator[kubernetes.client.ApiClient]:
    kubeconfig = tmp_path / "kubeconfig"
    with api.api_client(kubeconfig, token="t") as api_client:  # noqa: S106 -- fake server
        yield api_client


@pytest.fixture
def core(client: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(client)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened
