"""Fixtures for the admin tests: the fleet of `igw.epp.testing.admin_fleet`, upstream's default
config on a fake clock, and a real grpc.aio server serving the admin API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from igw.epp.admin import AdminClient, AdminService
from igw.epp.config import EppConfig, load_config
from igw.epp.framework import PluginHandle
from igw.epp.testing.admin_fleet import StaticSource
from igw.epp.testing.builders import FakeClock, seeded
from igw.epp.testing.requestpath import director_for


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(clock: FakeClock) -> EppConfig:
    return load_config(handle=PluginHandle(rng=seeded(), clock=clock))


@pytest.fixture
def source() -> StaticSource:
    return StaticSource()


@pytest.fixture
def service(source: StaticSource, config: EppConfig, clock: FakeClock) -> AdminService:
    director = director_for(config, source)
    return AdminService.for_director(
        director, config.plugins, staleness_threshold_s=2.0, clock=clock
    )


@pytest.fixture
async def address(service: AdminService) -> AsyncIterator[str]:
    """A real grpc.aio server on a free loopback port, serving `service`."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([service.rpc_handler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


@pytest.fixture
async def client(address: str) -> AsyncIterator[AdminClient]:
    async with grpc.aio.insecure_channel(address) as channel:
        yield AdminClient(channel, timeout_s=5.0)
