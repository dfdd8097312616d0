"""igw.common.health over real gRPC: Check for any name, or by probe with leader election, List,
Watch left unimplemented."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import grpc
import pytest
from grpc_health.v1 import health_pb2

from igw.common.extproc import EXT_PROC_SERVICE
from igw.common.health import LIVENESS, READINESS, HealthService

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
WAIT_S = 5.0
# The typeshed stubs predate the List method.
_list_pb2 = cast(Any, health_pb2)


@asynccontextmanager
async def health_channel(health: HealthService) -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([health.rpc_handler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop(None)


async def check(channel: grpc.aio.Channel, service: str) -> int:
    method = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    reply = await method(health_pb2.HealthCheckRequest(service=service), timeout=WAIT_S)
    return int(reply.status)


SERVICE_NAMES = [
    pytest.param("", id="overall"),
    pytest.param("anything", id="unknown-name"),
    pytest.param(EXT_PROC_SERVICE, id="ext-proc"),
]


@pytest.mark.parametrize("service", SERVICE_NAMES)
@pytest.mark.parametrize(
    ("ready", "expected"),
    [pytest.param(True, SERVING, id="ready"), pytest.param(False, NOT_SERVING, id="not-ready")],
)
async def test_check_answers_any_name_from_readiness(
    service: str, ready: bool, expected: int
) -> None:
    async with health_channel(HealthService(lambda: ready)) as channel:
        assert await check(channel, service) == expected


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_check_not_serving_after_shutdown(service: str) -> None:
    health = HealthService(lambda: True)
    async with health_channel(health) as channel:
        before = await check(channel, service)
        health.shutdown()

        assert (before, await check(channel, service)) == (SERVING, NOT_SERVING)


async def test_check_follows_readiness_as_it_changes() -> None:
    state = {"ready": False}
    async with health_channel(HealthService(lambda: state["ready"])) as channel:
        first = await check(channel, "")
        state["ready"] = True
        second = await check(channel, "")

    assert (first, second) == (NOT_SERVING, SERVING)


async def list_statuses(channel: grpc.aio.Channel) -> dict[str, int]:
    method = channel.unary_unary(
        "/grpc.health.v1.Health/List",
        request_serializer=_list_pb2.HealthListRequest.SerializeToString,
        response_deserializer=_list_pb2.HealthListResponse.FromString,
    )
    reply = await method(_list_pb2.HealthListRequest(), timeout=WAIT_S)
    return {name: int(status.status) for name, status in reply.statuses.items()}


async def test_list_names_every_service() -> None:
    health = HealthService(lambda: True, services=["", EXT_PROC_SERVICE])
    async with health_channel(health) as channel:
        serving = await list_statuses(channel)
        health.shutdown()
        stopping = await list_statuses(channel)

    assert serving == {"": SERVING, EXT_PROC_SERVICE: SERVING}
    assert stopping == {"": NOT_SERVING, EXT_PROC_SERVICE: NOT_SERVING}


async def test_watch_is_unimplemented() -> None:
    """As upstream: probes and Envoy only use Check."""
    async with health_channel(HealthService(lambda: True)) as channel:
        watch = channel.unary_stream(
            "/grpc.health.v1.Health/Watch",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            [reply async for reply in watch(health_pb2.HealthCheckRequest(), timeout=WAIT_S)]

    assert failed.value.code() is grpc.StatusCode.UNIMPLEMENTED


GATED = [
    pytest.param(READINESS, id="readiness"),
    pytest.param("", id="overall"),
    pytest.param(EXT_PROC_SERVICE, id="ext-proc"),
]


@pytest.mark.parametrize("service", GATED)
@pytest.mark.parametrize(
    ("ready", "leader", "expected"),
    [
        pytest.param(True, True, SERVING, id="ready-leader"),
        pytest.param(True, False, NOT_SERVING, id="ready-standby"),
        pytest.param(False, True, NOT_SERVING, id="unsynced-leader"),
        pytest.param(False, False, NOT_SERVING, id="unsynced-standby"),
    ],
)
async def test_with_leader_election_only_a_ready_leader_is_ready(
    service: str, ready: bool, leader: bool, expected: int
) -> None:
    async with health_channel(HealthService(lambda: ready, leader=lambda: leader)) as channel:
        assert await check(channel, service) == expected


@pytest.mark.parametrize(
    ("ready", "leader"),
    [pytest.param(False, False, id="unsynced-standby"), pytest.param(True, True, id="leader")],
)
async def test_with_leader_election_liveness_is_always_serving(ready: bool, leader: bool) -> None:
    """A standby must not be restarted for being a standby (upstream's comment says as much)."""
    async with health_channel(HealthService(lambda: ready, leader=lambda: leader)) as channel:
        assert await check(channel, LIVENESS) == SERVING


async def test_with_leader_election_an_unknown_name_is_service_unknown() -> None:
    """As upstream's health.go: a SERVICE_UNKNOWN status in an OK answer, not a NOT_FOUND error."""
    async with health_channel(HealthService(lambda: True, leader=lambda: True)) as channel:
        assert await check(channel, "inference-extension") == UNKNOWN


async def test_with_leader_election_shutdown_stops_every_answer() -> None:
    health = HealthService(lambda: True, leader=lambda: True)
    async with health_channel(health) as channel:
        health.shutdown()
        answers = [await check(channel, name) for name in (LIVENESS, READINESS, "")]

    assert answers == [NOT_SERVING] * 3


async def test_with_leader_election_list_adds_the_probes() -> None:
    state = {"leader": False}
    health = HealthService(
        lambda: True, services=[EXT_PROC_SERVICE], leader=lambda: state["leader"]
    )
    async with health_channel(health) as channel:
        standby = await list_statuses(channel)
        state["leader"] = True
        leader = await list_statuses(channel)

    assert standby == {EXT_PROC_SERVICE: NOT_SERVING, LIVENESS: SERVING, READINESS: NOT_SERVING}
    assert leader == {EXT_PROC_SERVICE: SERVING, LIVENESS: SERVING, READINESS: SERVING}
