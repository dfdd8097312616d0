"""A gateway for tests: a real Envoy in front of the EPP (in-process, over real gRPC), sending
each request to the model server the EPP picks.

`open_gateway(envoy_factory, settings)` starts, in this order, and owns until it exits:

1. a `ScriptedModelServer` named "healthy", where `Gateway.still_serves` sends its request;
2. the EPP (`EppService` with `settings.epp`, serving on loopback without TLS or tracing, on ports
   the OS picks) over a `FreshEndpoints` source: no discovery and no scraping, the pool is what
   the test gives `Gateway.route_to`, its metrics read as scraped just now;
3. Envoy, through the `envoy_factory` pytest fixture (so a failed test shows Envoy's log): one
   listener whose ORIGINAL_DST cluster sends each request where the EPP's
   `x-gateway-destination-endpoint` points. The filters, in request order: `settings.lua_filters`,
   the subset hint (`settings.subset_hint`: a data plane that hints these endpoints on every
   request), the EPP's ext_proc filter in `settings.response_mode`; then the router, which with
   `served_endpoint_metadata` reports the endpoint that served to the EPP (`envoy.lb`);
4. the clients: an aiohttp session without a connection cap, and a gRPC channel to the EPP's
   health port for health checks and the admin API (`AdminClient`).

Shutdown is the reverse: the clients, then Envoy (no request reaches the EPP any more), then the
EPP (`stop()` drains its streams within `grace_s`, 0.5 s here), then the healthy pod. Model
servers the test starts are the test's to stop; started after the gateway, they stop before it.

The response modes (`igw.epp.server`'s docstring): "compatible" is upstream's filter config
(response body FULL_DUPLEX_STREAMED, trailers SEND), "lean" igw's (STREAMED, trailers SKIP).

What a test does with the started gateway, and what it can read: `igw.epp.testing.started_gateway`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

import aiohttp
import grpc
from grpc_health.v1 import health_pb2_grpc

from igw.common.testing import (
    EnvoyProcess,
    ExtProcFilter,
    LuaFilter,
    OriginalDstCluster,
    gateway_bootstrap,
)
from igw.common.testing.envoy_config import BodyMode, HeaderMode
from igw.epp.admin import AdminClient
from igw.epp.requestpath.headers import DESTINATION_SUBSET, LB_NAMESPACE, SUBSET_NAMESPACE
from igw.epp.server import EppOptions, EppService
from igw.epp.testing.model_servers import ScriptedModelServer
from igw.epp.testing.requestpath import FreshEndpoints
from igw.epp.testing.started_gateway import SETTLE_S, Gateway

__all__ = [
    "RESPONSE_MODES",
    "EnvoyStarter",
    "GatewaySettings",
    "ResponseMode",
    "StartGateway",
    "open_gateway",
]

ResponseMode = Literal["compatible", "lean"]
RESPONSE_MODES: Final[Mapping[ResponseMode, tuple[BodyMode, HeaderMode]]] = {
    "compatible": ("FULL_DUPLEX_STREAMED", "SEND"),
    "lean": ("STREAMED", "SKIP"),
}
"""The EPP filter's response body and trailer modes."""


class EnvoyStarter(Protocol):
    """What starts Envoy: the `envoy_factory` fixture of `igw.common.testing.pytest_plugin`."""

    async def start_async(self, config: dict[str, Any]) -> EnvoyProcess: ...


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """What differs between gateways; see the module docstring for where each goes."""

    epp: EppOptions = field(default_factory=EppOptions)
    """The EPP's options; the harness replaces the serving ones (ports, host, TLS, tracing)."""
    response_mode: ResponseMode = "compatible"
    lua_filters: tuple[LuaFilter, ...] = ()
    """Run ahead of the EPP: first on the request path, last on the response path."""
    subset_hint: tuple[str, ...] | None = None
    """`host:port` entries a data plane hints on every request (None: no hint at all)."""
    served_endpoint_metadata: bool = False


StartGateway = Callable[[GatewaySettings], Awaitable[Gateway]]
"""A fixture that starts a gateway per test with the test's settings (`open_gateway` inside)."""


@contextlib.asynccontextmanager
async def open_gateway(
    envoy_factory: EnvoyStarter,
    settings: GatewaySettings | None = None,
) -> AsyncIterator[Gateway]:
    """Starts a gateway (module docstring) and stops it on exit. Every part binds ports the OS
    picks (Envoy's are read back), so no port is picked free and bound later."""
    settings = settings or GatewaySettings()
    async with contextlib.AsyncExitStack() as stack:
        healthy = await stack.enter_async_context(ScriptedModelServer("healthy"))
        endpoints = FreshEndpoints()
        epp = EppService(_serving_options(settings.epp), endpoint_source=endpoints)
        await epp.start()
        stack.push_async_callback(epp.stop)
        bootstrap = gateway_bootstrap(
            routes=[], ext_procs=_filters(settings, epp.server.grpc_port),
            clusters=[OriginalDstCluster("pool")], default_cluster="pool",
            served_endpoint_metadata=settings.served_endpoint_metadata,
        )  # fmt: skip
        envoy = await envoy_factory.start_async(bootstrap)
        stack.push_async_callback(envoy.stop_async)
        # No per-host connection cap: some tests open hundreds of requests at once.
        connector = aiohttp.TCPConnector(limit=0)
        session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{epp.server.health_port}")
        stack.push_async_callback(channel.close)
        admin = AdminClient(channel, timeout_s=SETTLE_S)
        health = health_pb2_grpc.HealthStub(channel)
        yield Gateway(envoy.url, envoy, epp, endpoints, session, admin, healthy, health)


def _serving_options(options: EppOptions) -> EppOptions:
    """The test's options, served on loopback ports the OS picks, without TLS or tracing."""
    return dataclasses.replace(
        options, grpc_port=0, grpc_health_port=0, metrics_port=0, host="127.0.0.1",
        secure_serving=False, tracing=False, grace_s=0.5, metrics_endpoint_auth=False,
    )  # fmt: skip


def _filters(settings: GatewaySettings, epp_port: int) -> list[ExtProcFilter | LuaFilter]:
    """The HTTP filters ahead of the router, in request order (module docstring)."""
    filters: list[ExtProcFilter | LuaFilter] = list(settings.lua_filters)
    forwarded: list[str] = []
    if settings.subset_hint is not None:
        filters.append(LuaFilter("subset-hint", _subset_hint_lua(settings.subset_hint)))
        forwarded.append(SUBSET_NAMESPACE)
    if settings.served_endpoint_metadata:
        forwarded.append(LB_NAMESPACE)
    body_mode, trailer_mode = RESPONSE_MODES[settings.response_mode]
    epp_filter = ExtProcFilter(
        name="epp", port=epp_port, tls=False, response_header_mode="SEND",
        response_body_mode=body_mode, response_trailer_mode=trailer_mode,
        forwarding_namespaces=tuple(forwarded),
    )  # fmt: skip
    return [*filters, epp_filter]


def _subset_hint_lua(entries: Iterable[str]) -> str:
    """Envoy Lua standing in for a data plane that hints the subset `entries` on every request."""
    items = ", ".join(json.dumps(entry) for entry in entries)  # plain ASCII: valid Lua strings
    return f"""
function envoy_on_request(handle)
  handle:streamInfo():dynamicMetadata():set(
    "{SUBSET_NAMESPACE}", "{DESTINATION_SUBSET}", {{{items}}})
end
"""
