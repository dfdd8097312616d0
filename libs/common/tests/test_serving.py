"""igw.common.serving ExtProcServer: ports, TLS, and the ordered, graceful stop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from igw.common.envoy import ProcessingRequest
from igw.common.extproc import (
    PASS_THROUGH,
    ExtProcServicer,
    HttpRequest,
    PassThroughExchange,
    RequestVerdict,
    StreamInfo,
)
from igw.common.health import HealthService
from igw.common.serving import ExtProcServer, ServerOptions
from igw.common.testing import messages
from igw.common.tls import self_signed_pair

GET = {":method": "GET", ":path": "/v1/models"}
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
WAIT_S = 5.0
Background = Callable[[], Coroutine[Any, Any, None]]


class GatedExchange(PassThroughExchange):
    """Holds each request until `release` is set, so a test can stop the server mid-request."""

    def __init__(self, entered: asyncio.Event, release: asyncio.Event) -> None:
        self._entered = entered
        self._release = release

    async def request(self, request: HttpRequest) -> RequestVerdict:  # noqa: ARG002 - protocol
        self._entered.set()
        await self._release.wait()
        return PASS_THROUGH


def options(**overrides: Any) -> ServerOptions:
    """Loopback, free ports, plaintext unless a test says otherwise."""
    fields: dict[str, Any] = {
        "grpc_port": 0,
        "health_port": 0,
        "host": "127.0.0.1",
        "secure": False,
    }
    return ServerOptions(**(fields | overrides))


@asynccontextmanager
async def running(
    opts: ServerOptions,
    *,
    health: HealthService | None = None,
    exchange: Callable[[StreamInfo], PassThroughExchange] = lambda _: PassThroughExchange(),
    background: Sequence[Background] = (),
) -> AsyncIterator[ExtProcServer]:
    server = ExtProcServer(
        ExtProcServicer(exchange),
        health or HealthService(lambda: True),
        opts,
        background=background,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def channel_to(
    port: int, credentials: grpc.ChannelCredentials | None = None
) -> AsyncIterator[grpc.aio.Channel]:
    target = f"127.0.0.1:{port}"
    if credentials is None:
        channel = grpc.aio.insecure_channel(target)
    else:
        override = (("grpc.ssl_target_name_override", "igw"),)
        channel = grpc.aio.secure_channel(target, credentials, options=override)
    async with channel:
        yield channel


async def get(channel: grpc.aio.Channel) -> tuple[list[str], grpc.StatusCode]:
    """One header-only request through `Process`: the reply kinds and the final status."""
    sent: list[ProcessingRequest] = [messages.request_headers(GET, end_of_stream=True)]
    call = messages.ext_proc_call(channel)(iter(sent), timeout=WAIT_S)
    try:
        kinds = [messages.describe(reply).kind async for reply in call]
    except grpc.aio.AioRpcError as e:
        return [], e.code()
    return kinds, await call.code()


async def health_check(channel: grpc.aio.Channel) -> int | grpc.StatusCode:
    """The health status, or the gRPC error code when the check itself fails."""
    method = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    try:
        reply = await method(health_pb2.HealthCheckRequest(), timeout=WAIT_S)
    except grpc.aio.AioRpcError as e:
        return e.code()
    return int(reply.status)


async def test_serves_ext_proc_and_health_on_chosen_ports() -> None:
    async with running(options()) as server:
        async with channel_to(server.grpc_port) as ext_proc:
            stream = await get(ext_proc)
            health_on_grpc_port = await health_check(ext_proc)
        async with channel_to(server.health_port) as health:
            status = await health_check(health)

    assert 0 not in (server.grpc_port, server.health_port)
    assert server.grpc_port != server.health_port
    assert stream == (["request_headers"], grpc.StatusCode.OK)
    assert status == SERVING
    assert health_on_grpc_port is grpc.StatusCode.UNIMPLEMENTED


async def test_health_on_grpc_port_when_asked() -> None:
    async with (
        running(options(health_on_grpc_port=True)) as server,
        channel_to(server.grpc_port) as channel,
    ):
        status = await health_check(channel)

    assert status == SERVING


@pytest.fixture
def cert_dir(tmp_path: Path) -> tuple[Path, bytes]:
    cert, key = self_signed_pair("igw")
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    return tmp_path, cert


async def test_secure_with_cert_path(cert_dir: tuple[Path, bytes]) -> None:
    directory, cert = cert_dir
    async with running(options(secure=True, cert_path=directory)) as server:
        async with channel_to(server.grpc_port, grpc.ssl_channel_credentials(cert)) as trusting:
            trusted = await get(trusting)
        async with channel_to(server.grpc_port, grpc.ssl_channel_credentials()) as untrusting:
            untrusted = await get(untrusting)
        async with channel_to(server.grpc_port) as plaintext:
            unencrypted = await get(plaintext)

    assert trusted == (["request_headers"], grpc.StatusCode.OK)
    assert untrusted == unencrypted == ([], grpc.StatusCode.UNAVAILABLE)


async def test_secure_by_default(cert_dir: tuple[Path, bytes]) -> None:
    """The default is TLS with a certificate no client was given (health stays plaintext)."""
    _, cert = cert_dir
    opts = ServerOptions(grpc_port=0, health_port=0, host="127.0.0.1")
    async with running(opts) as server:
        async with channel_to(server.grpc_port) as plaintext:
            unencrypted = await get(plaintext)
        async with channel_to(server.grpc_port, grpc.ssl_channel_credentials(cert)) as pinned:
            other_cert = await get(pinned)
        async with channel_to(server.health_port) as health:
            status = await health_check(health)

    assert unencrypted == other_cert == ([], grpc.StatusCode.UNAVAILABLE)
    assert status == SERVING


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port another socket is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("which", ["grpc_port", "health_port"])
async def test_port_in_use_fails_start(taken_port: int, which: str) -> None:
    """No SO_REUSEPORT: a second process must not silently share the port."""
    server = ExtProcServer(
        ExtProcServicer(lambda _: PassThroughExchange()),
        HealthService(lambda: True),
        options(**{which: taken_port}),
    )

    with pytest.raises(RuntimeError, match=f"bind.*{taken_port}"):
        await server.start()
    await server.stop()


async def test_stop_is_graceful_and_ordered() -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    background_started, background_cancelled = asyncio.Event(), asyncio.Event()

    async def watch_forever() -> None:
        background_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            background_cancelled.set()
            raise

    server = ExtProcServer(
        ExtProcServicer(lambda _: GatedExchange(entered, release)),
        HealthService(lambda: True),
        options(grace_s=WAIT_S),
        background=[watch_forever],
    )
    await server.start()
    async with channel_to(server.grpc_port) as ext_proc, channel_to(server.health_port) as health:
        in_flight = asyncio.create_task(get(ext_proc))
        await asyncio.wait_for(entered.wait(), WAIT_S)
        await asyncio.wait_for(background_started.wait(), WAIT_S)

        stopping = asyncio.create_task(server.stop())
        await asyncio.sleep(0.05)
        # 1. health says NOT_SERVING while in-flight streams drain; background still runs.
        during_stop = await health_check(health)
        cancelled_early = background_cancelled.is_set()
        refused = await get(ext_proc)
        # 2. the stream started before stop completes normally.
        release.set()
        finished = await asyncio.wait_for(in_flight, WAIT_S)
        await asyncio.wait_for(stopping, WAIT_S)
        # 3. background cancelled, health server gone.
        after_stop = await health_check(health)

    assert during_stop == NOT_SERVING
    assert not cancelled_early
    assert refused == ([], grpc.StatusCode.UNAVAILABLE)
    assert finished == (["request_headers"], grpc.StatusCode.OK)
    assert background_cancelled.is_set()
    assert after_stop is grpc.StatusCode.UNAVAILABLE
    await server.stop()  # a second stop is harmless


async def test_health_port_serves_extra_handlers() -> None:
    """The EPP's admin API rides on the health port: extra handlers answer there only."""

    async def echo(request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    handler = grpc.method_handlers_generic_handler(
        "test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = ExtProcServer(
        ExtProcServicer(lambda _: PassThroughExchange()),
        HealthService(lambda: True),
        options(),
        health_port_handlers=[handler],
    )
    await server.start()
    try:
        replies: dict[str, bytes | grpc.StatusCode] = {}
        for name, port in (("health", server.health_port), ("ext_proc", server.grpc_port)):
            async with channel_to(port) as channel:
                try:
                    call = channel.unary_unary(
                        "/test.Echo/Echo",
                        request_serializer=bytes,
                        response_deserializer=bytes,
                    )
                    replies[name] = await call(b"hi", timeout=WAIT_S)
                except grpc.aio.AioRpcError as e:
                    replies[name] = e.code()
    finally:
        await server.stop()

    assert replies == {"health": b"hi", "ext_proc": grpc.StatusCode.UNIMPLEMENTED}


async def test_the_shutdown_delay_takes_new_streams_while_health_says_not_serving() -> None:
    """`shutdown_delay_s`: a proxy that has not seen NOT_SERVING yet loses no request."""
    async with (
        running(options(shutdown_delay_s=WAIT_S, grace_s=WAIT_S)) as server,
        channel_to(server.grpc_port) as ext_proc,
        channel_to(server.health_port) as health,
    ):
        stopping = asyncio.create_task(server.stop())
        during_delay = await health_check(health)
        taken = await get(ext_proc)
        await asyncio.wait_for(stopping, 3 * WAIT_S)
        after = await get(ext_proc)
    assert during_delay == NOT_SERVING
    assert taken == (["request_headers"], grpc.StatusCode.OK)
    assert after == ([], grpc.StatusCode.UNAVAILABLE)
