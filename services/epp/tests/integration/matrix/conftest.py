"""The rest of upstream's hermetic EPP matrix (reference §11.3), through a real Envoy: fixtures.

The cases test_epp_through_envoy.py and test_epp_response_modes.py do not cover: LoRA affinity,
the passthrough parser, the subset hint, the header model rewrite, response buffering with the
model written back, shedding, and the conformance testing filter. Each is checked as a user would
notice it: which model server got the request and with what bytes, what the client got back, and
the EPP's metrics.

Each test starts its own gateway (`start_gateway`): the EPP in-process over real gRPC, in
upstream's compatible configuration unless the test asks for igw's lean one, with the config,
objectives and flags the case needs; Envoy's ORIGINAL_DST cluster sends each request where the
EPP points, and a Lua filter ahead of the EPP plays the data plane that sets the subset hint, as
`make run` does. Model servers are `ScriptedModelServer`s, which record what arrived and answer in
controlled chunks; each pod has its own loopback IP (127.0.0.2, .3 ...), because the subset hint
and the testing filter match on IPs. Endpoint metrics are set by the test and read as freshly
scraped.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.testing.gateway import GatewaySettings, StartGateway, open_gateway
from igw.epp.testing.model_servers import ScriptedModelServer
from igw.epp.testing.started_gateway import Gateway


@pytest.fixture
async def start_gateway(envoy_factory: EnvoyFactory) -> AsyncIterator[StartGateway]:
    """Starts a gateway with the test's settings; each is stopped after the test."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(settings: GatewaySettings) -> Gateway:
            opened = open_gateway(envoy_factory, settings)
            return await stack.enter_async_context(opened)

        yield start


@pytest.fixture
async def pods() -> AsyncIterator[tuple[ScriptedModelServer, ...]]:
    """Three model servers, pod-0 .. pod-2, on 127.0.0.2 .. 127.0.0.4."""
    async with contextlib.AsyncExitStack() as stack:
        servers = [ScriptedModelServer(f"pod-{i}", host=f"127.0.0.{i + 2}") for i in range(3)]
        yield tuple([await stack.enter_async_context(server) for server in servers])
