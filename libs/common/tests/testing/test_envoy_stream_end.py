"""How Envoy ends an ext_proc stream once the HTTP request is over, with our gateway bootstrap.

Envoy's default is to reset the stream: the processor's handler is cancelled while it awaits
the next message, and grpc.aio leaks native memory on that path (grpc/grpc#43360), about
120 bytes per request for as long as the process lives. The bootstrap turns on
`GRACEFUL_EXT_PROC_CLOSE`, so Envoy half-closes and the processor ends the call itself. The
second test removes the key and sees the reset, which shows the first one can fail.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest

from igw.common import envoy
from igw.common.envoy import Phase, ProcessingRequest, ProcessingResponse
from igw.common.extproc import EXT_PROC_SERVICE
from igw.common.testing.echo import run_echo_backends
from igw.common.testing.envoy_config import (
    GRACEFUL_EXT_PROC_CLOSE,
    ExtProcFilter,
    StaticCluster,
    gateway_bootstrap,
)
from igw.common.testing.pytest_plugin import EnvoyFactory

pytestmark = pytest.mark.envoy
_REQUESTS = 10


class _EndRecorder:
    """A processor that passes request headers and records how each stream ended."""

    def __init__(self) -> None:
        self.ends: asyncio.Queue[str] = asyncio.Queue()

    async def process(
        self,
        requests: AsyncIterator[ProcessingRequest],
        _context: grpc.aio.ServicerContext[ProcessingRequest, ProcessingResponse],
    ) -> AsyncIterator[ProcessingResponse]:
        try:
            async for message in requests:
                if message.WhichOneof("request") == "request_headers":
                    yield envoy.headers_response(Phase.REQUEST)
        except BaseException:
            self.ends.put_nowait("reset")  # cancelled, or closed while suspended
            raise
        self.ends.put_nowait("half-close")


@contextlib.asynccontextmanager
async def _processor() -> AsyncIterator[tuple[_EndRecorder, int]]:
    recorder = _EndRecorder()
    server = grpc.aio.server()
    handler = grpc.stream_stream_rpc_method_handler(
        recorder.process,
        request_deserializer=ProcessingRequest.FromString,
        response_serializer=ProcessingResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(EXT_PROC_SERVICE, {"Process": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield recorder, port
    finally:
        await server.stop(grace=None)


async def _stream_ends(envoy_factory: EnvoyFactory, *, graceful: bool) -> list[str]:
    """How the ext_proc streams of ten GET requests through Envoy ended."""
    async with run_echo_backends("model") as backends, _processor() as (recorder, port):
        config: dict[str, Any] = gateway_bootstrap(
            ext_procs=[ExtProcFilter("probe", port, tls=False, request_body_mode="NONE")],
            routes=[],
            clusters=[StaticCluster("model", (("127.0.0.1", backends["model"].port),))],
            default_cluster="model",
        )
        if not graceful:
            del config["layered_runtime"]
        gateway = await envoy_factory.start_async(config)
        async with aiohttp.ClientSession() as session:
            for _ in range(_REQUESTS):
                async with session.get(f"{gateway.url}/v1/models") as response:
                    assert response.status == 200
        return [await asyncio.wait_for(recorder.ends.get(), timeout=30) for _ in range(_REQUESTS)]


async def test_envoy_half_closes_each_ext_proc_stream(envoy_factory: EnvoyFactory) -> None:
    assert gateway_bootstrap(routes=[], ext_procs=[], clusters=[], default_cluster=None)[
        "layered_runtime"
    ]["layers"][0]["static_layer"] == dict(GRACEFUL_EXT_PROC_CLOSE)
    assert await _stream_ends(envoy_factory, graceful=True) == ["half-close"] * _REQUESTS


async def test_without_the_runtime_key_envoy_resets_the_stream(
    envoy_factory: EnvoyFactory,
) -> None:
    # Envoy half-closes and resets at once, so a handler sometimes sees the end before the reset
    # (the reset then fails its status, grpc#43360's other leaking path); some are always reset.
    assert "reset" in await _stream_ends(envoy_factory, graceful=False)
