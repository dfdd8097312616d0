"""The EPP on Kubernetes: `--pool-name` against an API server over real HTTP (our fake, which
speaks the real list/watch protocol), as an operator would see it: the endpoints `igw-epp
endpoints` lists, the gRPC health, and what survives the API server misbehaving."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from igw.common.kube import Timings
from igw.common.testing.kube_api import FakeKubeApi
from igw.epp.admin import AdminClient
from igw.epp.discovery import PoolOptions
from igw.epp.server import EppOptions, EppService
from igw.epp.testing.kube_objects import inference_pool, pod

NS = "serving"
SELECTOR = {"app": "vllm"}
FAST = Timings(stop_poll_s=0.2, backoff_initial_s=0.05, backoff_max_s=0.5)
SETTLE_S = 30.0


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + SETTLE_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {SETTLE_S} s: {what}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeKubeApi]:
    async with FakeKubeApi() as fake:
        monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig(tmp_path / "kubeconfig")))
        yield fake


def start_pool(api: FakeKubeApi, *pods: dict[str, Any]) -> None:
    api.put(inference_pool("llama", SELECTOR, [8000, 8001], namespace=NS))
    for p in pods:
        api.put(p)


@pytest.fixture
async def epp(api: FakeKubeApi) -> AsyncIterator[EppService]:
    options = EppOptions(
        grpc_port=0, grpc_health_port=0, metrics_port=0, host="127.0.0.1", secure_serving=False,
        tracing=False, grace_s=0.1, pool=PoolOptions("llama", NS), watch_timings=FAST,
    )  # fmt: skip
    service = EppService(options)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


def served(service: EppService) -> list[str]:
    assert service.datastore is not None
    return sorted(state.endpoint.name for state in service.datastore.endpoints())


async def health(service: EppService, name: str = "") -> int:
    """The status gRPC health answers on the EPP's health port, as a probe asks it."""
    address = f"127.0.0.1:{service.server.health_port}"
    async with grpc.aio.insecure_channel(address) as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        answer = await check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        return int(answer.status)


SERVING, NOT_SERVING = (
    health_pb2.HealthCheckResponse.SERVING,
    health_pb2.HealthCheckResponse.NOT_SERVING,
)


def ready_pod(name: str, ip: str, **kw: Any) -> dict[str, Any]:
    return pod(name, ip, SELECTOR, namespace=NS, **kw)


async def test_the_pool_s_ready_matching_pods_are_served_and_listed(
    api: FakeKubeApi, epp: EppService
) -> None:
    start_pool(
        api, ready_pod("vllm-0", "10.0.0.1"), ready_pod("vllm-1", "10.0.0.2", ready=False),
        pod("other-0", "10.0.0.3", {"app": "other"}, namespace=NS),
        pod("elsewhere-0", "10.0.0.4", SELECTOR, namespace="other"),
    )  # fmt: skip
    await eventually(epp.health.serving, "ready")
    assert served(epp) == ["vllm-0-rank-0", "vllm-0-rank-1"]
    assert await health(epp) == SERVING
    address = f"127.0.0.1:{epp.server.health_port}"
    async with grpc.aio.insecure_channel(address) as channel:
        inventory = await AdminClient(channel, timeout_s=5).list_endpoints()
    assert sorted(report.endpoint.name for report in inventory.endpoints) == served(epp)
    addresses = {report.endpoint.hostport for report in inventory.endpoints}
    assert addresses == {"10.0.0.1:8000", "10.0.0.1:8001"}


async def test_pod_changes_reach_the_datastore_at_the_next_watch_event(
    api: FakeKubeApi, epp: EppService
) -> None:
    start_pool(api, ready_pod("vllm-0", "10.0.0.1"), ready_pod("vllm-1", "10.0.0.2"))
    await eventually(lambda: len(served(epp)) == 4, "both pods served")
    api.put(ready_pod("vllm-0", "10.0.0.1", ready=False))
    await eventually(lambda: served(epp) == ["vllm-1-rank-0", "vllm-1-rank-1"], "un-ready")
    api.put(pod("vllm-1", "10.0.0.2", {"app": "moved"}, namespace=NS))
    await eventually(lambda: served(epp) == [], "relabelled away")
    api.put(ready_pod("vllm-1", "10.0.0.9"))
    await eventually(lambda: served(epp) == ["vllm-1-rank-0", "vllm-1-rank-1"], "back")
    assert epp.datastore is not None
    assert {s.endpoint.address for s in epp.datastore.endpoints()} == {"10.0.0.9"}
    api.delete("v1", "Pod", "vllm-1", NS)
    await eventually(lambda: served(epp) == [], "deleted")


async def test_a_deleted_pool_is_not_serving_and_recovers_when_recreated(
    api: FakeKubeApi, epp: EppService
) -> None:
    start_pool(api, ready_pod("vllm-0", "10.0.0.1"))
    await eventually(epp.health.serving, "ready")
    api.delete("inference.networking.k8s.io/v1", "InferencePool", "llama", NS)
    await eventually(lambda: not epp.health.serving(), "not serving")
    assert served(epp) == []
    assert await health(epp) == NOT_SERVING
    start_pool(api)
    await eventually(epp.health.serving, "serving again")
    assert served(epp) == ["vllm-0-rank-0", "vllm-0-rank-1"]


async def test_410_gone_loses_nothing(api: FakeKubeApi, epp: EppService) -> None:
    start_pool(api, ready_pod("vllm-0", "10.0.0.1"))
    await eventually(lambda: len(served(epp)) == 2, "served")
    api.compact()
    api.end_watches()  # the informers resume from a resourceVersion the server has forgotten
    api.put(ready_pod("vllm-1", "10.0.0.2"))
    await eventually(lambda: len(served(epp)) == 4, "the pod added meanwhile")
    assert epp.health.serving()


async def test_a_restarted_api_server_loses_nothing(api: FakeKubeApi, epp: EppService) -> None:
    start_pool(api, ready_pod("vllm-0", "10.0.0.1"), ready_pod("vllm-1", "10.0.0.2"))
    await eventually(lambda: len(served(epp)) == 4, "served")
    api.fail_next(5)
    await api.restart()
    # While the watches are down the last known endpoints stay served.
    assert len(served(epp)) == 4
    assert epp.health.serving()
    api.delete("v1", "Pod", "vllm-0", NS)
    api.put(ready_pod("vllm-2", "10.0.0.3"))
    await eventually(
        lambda: served(epp) == ["vllm-1-rank-0", "vllm-1-rank-1", "vllm-2-rank-0", "vllm-2-rank-1"],
        "the changes made while disconnected",
    )


async def test_objectives_of_the_pool_set_priorities(api: FakeKubeApi, epp: EppService) -> None:
    start_pool(api, ready_pod("vllm-0", "10.0.0.1"))
    for name, pool, priority in (("batch", "llama", -1), ("critical", "llama", 10),
                                 ("theirs", "other-pool", -5)):  # fmt: skip
        api.put({
            "apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferenceObjective",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"priority": priority, "poolRef": {"name": pool}},
        })  # fmt: skip
    objectives = epp.director.objectives
    await eventually(lambda: objectives.priority("critical") == 10, "objectives")
    assert objectives.priority("batch") == -1
    assert objectives.priority("theirs") == 0  # another pool's objective is ignored


async def scrape(service: EppService, token: str | None) -> int:
    """The status of one `/metrics` scrape, with `token` as its bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    url = f"http://127.0.0.1:{service.metrics_server.port}/metrics"
    request = urllib.request.Request(url, headers=headers)
    try:
        with await asyncio.to_thread(urllib.request.urlopen, request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as e:
        return e.code


async def test_metrics_need_a_token_allowed_to_get_them(api: FakeKubeApi, epp: EppService) -> None:
    """`--metrics-endpoint-auth`, upstream's default: TokenReview, then SubjectAccessReview."""
    api.tokens.update({"scraper-token": "prometheus", "other-token": "someone"})
    api.allowed.add(("prometheus", "get", "/metrics"))
    assert await scrape(epp, None) == 401
    assert await scrape(epp, "forged") == 401
    assert await scrape(epp, "other-token") == 403
    assert await scrape(epp, "scraper-token") == 200
