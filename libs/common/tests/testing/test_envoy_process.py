"""Tests for the real-Envoy process manager, routing to echo backends by model header."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from igw.common.testing.echo import EchoBackend, run_echo_backends
from igw.common.testing.envoy_config import (
    NO_ROUTE_BODY,
    HeaderRoute,
    StaticCluster,
    gateway_bootstrap,
)
from igw.common.testing.envoy_process import EnvoyError, EnvoyProcess
from igw.common.testing.pytest_plugin import EnvoyFactory

pytestmark = pytest.mark.envoy

MODEL_HEADER = "x-gateway-model-name"


@pytest.fixture
async def backends() -> AsyncIterator[dict[str, EchoBackend]]:
    async with run_echo_backends("a", "b") as started:
        yield started


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def _config(
    backends: dict[str, EchoBackend],
    default_cluster: str | None = None,
) -> dict[str, Any]:
    return gateway_bootstrap(
        ext_procs=(),
        routes=[HeaderRoute(MODEL_HEADER, name, f"backend-{name}") for name in backends],
        clusters=[
            StaticCluster(f"backend-{name}", (("127.0.0.1", b.port),))
            for name, b in backends.items()
        ],
        default_cluster=default_cluster,
    )


@pytest.fixture
async def gateway(
    backends: dict[str, EchoBackend],
    envoy_factory: EnvoyFactory,
) -> EnvoyProcess:
    return await envoy_factory.start_async(_config(backends))


@pytest.mark.parametrize(
    ("headers", "served_by"),
    [
        pytest.param({MODEL_HEADER: "a"}, "a", id="model-a"),
        pytest.param({MODEL_HEADER: "b"}, "b", id="model-b"),
        pytest.param({}, None, id="no-model-header"),
        pytest.param({MODEL_HEADER: "c"}, None, id="unknown-model"),
    ],
)
async def test_routes_by_model_header(
    gateway: EnvoyProcess,
    session: aiohttp.ClientSession,
    headers: dict[str, str],
    served_by: str | None,
) -> None:
    async with session.post(f"{gateway.url}/v1/completions", headers=headers) as response:
        body = await response.read()

    if served_by is None:
        # No default cluster: Envoy's own 404 says why.
        assert (response.status, body.decode()) == (404, NO_ROUTE_BODY)
    else:
        assert response.status == 200
        assert response.headers["x-served-by"] == served_by


async def test_default_cluster_takes_unmatched_requests(
    backends: dict[str, EchoBackend],
    envoy_factory: EnvoyFactory,
    session: aiohttp.ClientSession,
) -> None:
    config = _config(backends, default_cluster="backend-b")
    gateway = await envoy_factory.start_async(config)

    async with session.get(f"{gateway.url}/v1/models") as response:
        assert response.headers["x-served-by"] == "b"


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize(
    "chunked", [pytest.param(False, id="length"), pytest.param(True, id="chunked")]
)
async def test_large_body_arrives_byte_exact(
    gateway: EnvoyProcess, session: aiohttp.ClientSession, chunked: bool
) -> None:
    body = os.urandom(5 * 1024 * 1024)
    payload = _chunks(body, 256 * 1024) if chunked else io.BytesIO(body)

    async with session.post(gateway.url, data=payload, headers={MODEL_HEADER: "a"}) as response:
        answer = await response.json()

    assert answer["served_by"] == "a"
    assert answer["body_len"] == len(body)
    assert answer["body_sha256"] == hashlib.sha256(body).hexdigest()


async def test_stats_and_access_log_record_requests(
    gateway: EnvoyProcess, session: aiohttp.ClientSession
) -> None:
    for _ in range(3):
        async with session.get(gateway.url, headers={MODEL_HEADER: "b"}) as response:
            assert response.status == 200

    stats = gateway.admin_stats("cluster.backend-b.upstream_rq_")
    assert stats["cluster.backend-b.upstream_rq_completed"] == 3
    assert all(name.startswith("cluster.backend-b.upstream_rq_") for name in stats)
    assert await _log_shows(gateway, "model=b")


async def _log_shows(envoy: EnvoyProcess, text: str, timeout_s: float = 2.0) -> bool:
    """Envoy flushes its access log every 100 ms, so poll for it."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while text not in envoy.log_tail(10):
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def test_stop_leaves_no_process(gateway: EnvoyProcess) -> None:
    pid = gateway.pid
    assert pid is not None

    await gateway.stop_async()

    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    gateway.stop()  # idempotent


async def test_two_envoys_run_side_by_side(
    backends: dict[str, EchoBackend],
    session: aiohttp.ClientSession,
) -> None:
    first = EnvoyProcess(_config(backends))
    second = EnvoyProcess(_config(backends))

    async with first, second:
        # Both configs ask for port 0: each Envoy bound its own, read back at start.
        assert 0 not in (first.admin_port, second.admin_port, *first.listen_ports)
        assert first.listen_ports != second.listen_ports
        for envoy in (first, second):
            async with session.get(envoy.url, headers={MODEL_HEADER: "a"}) as response:
                assert response.headers["x-served-by"] == "a"

    assert first.pid != second.pid


def test_sync_context_manager_starts_and_stops() -> None:
    config = gateway_bootstrap(
        ext_procs=(),
        routes=(),
        clusters=(),
        default_cluster=None,
    )
    with EnvoyProcess(config) as envoy:
        assert envoy.admin_get("/ready") == (200, "LIVE\n")

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", envoy.admin_port), timeout=1).close()


def test_start_failure_reports_envoys_log() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config = gateway_bootstrap(
            listen_port=taken.getsockname()[1],
            ext_procs=(),
            routes=(),
            clusters=(),
            default_cluster=None,
        )
        envoy = EnvoyProcess(config)

        with pytest.raises(EnvoyError, match=r"(?s)exited with status.*Address already in use"):
            envoy.start()
