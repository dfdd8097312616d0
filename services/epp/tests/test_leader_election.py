"""`--ha-enable-leader-election`: two EPP replicas of one pool against a fake API server, as the
probes see them over gRPC health: both alive, only the Lease holder ready, the standby's
datastore warm all along, and the standby ready once the leader is gone (released or dead)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from igw.common.extproc import EXT_PROC_SERVICE
from igw.common.kube import LeaseTimings, Timings
from igw.common.testing.kube_api import FakeKubeApi
from igw.epp.discovery import PoolOptions
from igw.epp.server import EppOptions, EppService
from igw.epp.testing.kube_objects import inference_pool, pod
from igw.epp.workers import WorkerRole

NS, SELECTOR = "serving", {"app": "vllm"}
# Upstream names the Lease epp-<pool namespace>-<pool name>.gateway-api-inference-extension...
LEASE_NAME = f"epp-{NS}-llama.gateway-api-inference-extension.sigs.k8s.io"
LEASE = ("coordination.k8s.io/v1", "Lease", LEASE_NAME, NS)
WATCH = Timings(stop_poll_s=0.2, backoff_initial_s=0.05, backoff_max_s=0.5)
LEASE_TIMINGS = LeaseTimings(lease_duration_s=2, renew_deadline_s=1, retry_period_s=0.2)
SETTLE_S = 30.0
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

StartReplica = Callable[[], Awaitable[EppService]]


async def eventually(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + SETTLE_S
    while not await condition():
        assert time.monotonic() < deadline, f"not within {SETTLE_S} s: {what}"
        await asyncio.sleep(0.02)


async def health(service: EppService, name: str) -> int:
    """What gRPC health answers on the replica's health port, as a probe asks it."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.server.health_port}") as channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        answer = await check(health_pb2.HealthCheckRequest(service=name), timeout=10)
        return int(answer.status)


def served(service: EppService) -> list[str]:
    assert service.datastore is not None
    return sorted(state.endpoint.name for state in service.datastore.endpoints())


@pytest.fixture
async def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeKubeApi]:
    async with FakeKubeApi() as fake:
        monkeypatch.setenv("KUBECONFIG", str(fake.kubeconfig(tmp_path / "kubeconfig")))
        fake.put(inference_pool("llama", SELECTOR, [8000], namespace=NS))
        fake.put(pod("vllm-0", "10.0.0.1", SELECTOR, namespace=NS))
        yield fake


def replica_options(worker: WorkerRole | None = None) -> EppOptions:
    return EppOptions(
        grpc_port=0, grpc_health_port=0, metrics_port=0, host="127.0.0.1",
        secure_serving=False, tracing=False, grace_s=0.1, metrics_endpoint_auth=False,
        pool=PoolOptions("llama", NS), watch_timings=WATCH,
        leader_election=True, lease_timings=LEASE_TIMINGS, worker=worker,
    )  # fmt: skip


@pytest.fixture
async def start_replica(api: FakeKubeApi) -> AsyncIterator[StartReplica]:
    started: list[EppService] = []

    async def start() -> EppService:
        service = EppService(replica_options())
        started.append(service)
        await service.start()
        return service

    yield start
    for service in started:
        await service.stop()


async def readiness(*replicas: EppService) -> list[int]:
    return [await health(replica, "readiness") for replica in replicas]


async def leader_and_standby(start_replica: StartReplica) -> tuple[EppService, EppService]:
    a, b = await start_replica(), await start_replica()

    async def one_ready() -> bool:
        return sorted(await readiness(a, b)) == [SERVING, NOT_SERVING]

    await eventually(one_ready, "exactly one replica ready")
    return (a, b) if await health(a, "readiness") == SERVING else (b, a)


async def test_only_the_lease_holder_is_ready_and_both_are_alive(
    api: FakeKubeApi, start_replica: StartReplica
) -> None:
    leader, standby = await leader_and_standby(start_replica)

    assert [await health(r, "liveness") for r in (leader, standby)] == [SERVING, SERVING]
    for name in ("", EXT_PROC_SERVICE):  # what a load balancer and Envoy ask
        assert [await health(r, name) for r in (leader, standby)] == [SERVING, NOT_SERVING]
    assert await health(standby, "inference-extension") == UNKNOWN

    # The standby's datastore is warm: it takes over with the endpoints already known.
    async def standby_warm() -> bool:
        return served(standby) == ["vllm-0-rank-0"]

    await eventually(standby_warm, "the standby's datastore filled")
    assert served(leader) == ["vllm-0-rank-0"]
    assert standby.health.status("readiness") == NOT_SERVING  # warm, still not the leader
    lease = api.get(*LEASE)
    assert lease is not None
    assert leader.elector is not None
    assert lease["spec"]["holderIdentity"] == leader.elector.identity


@pytest.mark.parametrize(
    "release", [pytest.param(True, id="clean-stop"), pytest.param(False, id="killed")]
)
async def test_the_standby_becomes_ready_when_the_leader_goes(
    api: FakeKubeApi, start_replica: StartReplica, release: bool
) -> None:
    leader, standby = await leader_and_standby(start_replica)
    assert leader.elector is not None
    if not release:  # a killed process writes nothing on its way out
        assert await asyncio.to_thread(leader.elector.stop, release=False)
    await leader.stop()

    async def standby_ready() -> bool:
        return await health(standby, "readiness") == SERVING

    await eventually(standby_ready, "the standby ready")
    assert await health(standby, "liveness") == SERVING
    lease = api.get(*LEASE)
    assert lease is not None
    assert standby.elector is not None
    assert lease["spec"]["holderIdentity"] == standby.elector.identity
    assert lease["spec"]["leaseTransitions"] == 1


def test_leader_election_needs_a_pool(tmp_path: Path) -> None:
    options = EppOptions(
        endpoints_file=tmp_path / "endpoints.yaml", leader_election=True, tracing=False,
        metrics_endpoint_auth=False,
    )  # fmt: skip
    with pytest.raises(ValueError, match="needs a pool"):
        EppService(options)


async def test_every_worker_of_the_leading_pod_answers_as_worker_0_leads(
    api: FakeKubeApi,  # the API server the replicas talk to
    tmp_path: Path,
) -> None:
    """`--workers 2` with leader election: only worker 0 campaigns, and worker 1 (which answers
    health checks on the shared ext_proc port too) is ready exactly while worker 0 says it
    leads; once worker 0 is gone its word goes stale and worker 1 is not ready either."""
    zero = EppService(replica_options(WorkerRole(0, 2, tmp_path)))
    one = EppService(replica_options(WorkerRole(1, 2, tmp_path)))
    await zero.start()
    await one.start()
    try:
        assert one.elector is None  # one Lease per pod: worker 0's

        async def both_ready() -> bool:
            return await readiness(zero, one) == [SERVING, SERVING]

        await eventually(both_ready, "worker 1 ready as worker 0 leads")
        assert await health(one, EXT_PROC_SERVICE) == SERVING
        await zero.stop()

        async def one_not_ready() -> bool:
            return await readiness(one) == [NOT_SERVING]

        await eventually(one_not_ready, "worker 1 not ready once worker 0 is gone")
    finally:
        await zero.stop()
        await one.stop()
