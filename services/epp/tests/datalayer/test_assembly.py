"""The config's `dataLayer` section in effect: real loopback servers, the datastore it builds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from igw.epp.config import load_config
from igw.epp.datalayer.assembly import datastore_from_config
from igw.epp.datalayer.datastore import Datastore
from igw.epp.endpoints import Endpoint
from igw.epp.testing import MetricsServers, sglang_page, vllm_page
from igw.epp.testing.metrics_pages import VllmState

HEAD = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
SGLANG = "- type: core-metrics-extractor\n  parameters: {defaultEngine: sglang}\n"
SECTION = (
    "dataLayer:\n  sources:\n  - pluginRef: metrics-data-source\n"
    "    extractors: [{pluginRef: core-metrics-extractor}]\n"
)


@pytest.fixture
async def servers() -> AsyncIterator[MetricsServers]:
    servers = MetricsServers()
    yield servers
    await servers.close()


def build(text: str | None) -> Datastore:
    config = load_config(text)
    return datastore_from_config(config.data_layer, refresh_interval_s=0.01)


async def settle(store: Datastore, condition: Callable[[], bool], timeout_s: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


@pytest.mark.parametrize(
    ("text", "reads_sglang"),
    [
        pytest.param(None, False, id="built-in-default"),
        pytest.param(HEAD + "plugins:\n" + SGLANG + SECTION, True, id="section-names-it"),
        pytest.param(HEAD + "plugins:\n" + SGLANG, True, id="section-omitted-same-name"),
        pytest.param(HEAD + "plugins:\n- {name: other, type: core-metrics-extractor,"
                     " parameters: {defaultEngine: sglang}}\n", False,
                     id="section-omitted-other-name-is-not-used"),
    ],
)  # fmt: skip
async def test_the_extractor_parameters_decide_what_is_read(
    servers: MetricsServers, text: str | None, reads_sglang: bool
) -> None:
    """An SGLang server is read only when the configured extractor says SGLang by default."""
    (port,) = await servers.start(1, sglang_page(waiting=4, running=2, token_usage=0.5))
    async with build(text) as store:
        store.reconcile([Endpoint("s-rank-0", "127.0.0.1", port)])
        read = await settle(store, lambda: store.endpoints()[0].metrics.waiting == 4, 1.0)
        assert servers.hits[port] > 0
    assert read is reads_sglang


async def test_the_source_path_decides_what_is_fetched(servers: MetricsServers) -> None:
    """The page server only serves /metrics: another path answers 404, so nothing is read."""
    (port,) = await servers.start(1, vllm_page(VllmState(waiting=3)))
    for path, expected in (("/metrics", True), ("/elsewhere", False)):
        plugin = f"- type: metrics-data-source\n  parameters: {{path: {path}}}\n"
        async with build(HEAD + "plugins:\n" + plugin + SECTION) as store:
            store.reconcile([Endpoint("v-rank-0", "127.0.0.1", port)])
            read = await settle(store, lambda: store.endpoints()[0].metrics.waiting == 3, 1.0)
        assert read is expected, path


async def test_custom_engine_specs_are_read(servers: MetricsServers) -> None:
    """engineConfigs replace an engine: here vLLM's queue is read from the running gauge."""
    (port,) = await servers.start(1, vllm_page(VllmState(waiting=1, running=7)))
    extractor = (
        "- type: core-metrics-extractor\n  parameters:\n    engineConfigs:\n"
        "    - {name: vllm, queuedRequestsSpec: 'vllm:num_requests_running'}\n"
    )
    async with build(HEAD + "plugins:\n" + extractor) as store:
        store.reconcile([Endpoint("v-rank-0", "127.0.0.1", port)])
        assert await settle(store, lambda: store.endpoints()[0].metrics.waiting == 7)


async def test_no_sources_turns_collection_off(servers: MetricsServers) -> None:
    (port,) = await servers.start(1)
    async with build(HEAD + "dataLayer: {sources: []}\n") as store:
        store.reconcile([Endpoint("v-rank-0", "127.0.0.1", port)])
        await asyncio.sleep(0.2)
        (state,) = store.endpoints()
        assert not store.collecting
    assert servers.hits[port] == 0
    assert state.age(time.monotonic()) == float("inf")


async def test_the_deprecated_path_flag_wins_over_the_config(servers: MetricsServers) -> None:
    """`--model-server-metrics-path` (upstream's deprecated flag) overrides the source's path."""
    (port,) = await servers.start(1, vllm_page(VllmState(waiting=5)))
    plugin = "- type: metrics-data-source\n  parameters: {path: /elsewhere}\n"
    config = load_config(HEAD + "plugins:\n" + plugin + SECTION)
    for overrides, expected in (({}, False), ({"path": "/metrics"}, True)):
        store = datastore_from_config(
            config.data_layer, refresh_interval_s=0.01,
            source_overrides=overrides,
        )  # fmt: skip
        assert await _reads_waiting(store, port, 5) is expected, overrides


async def _reads_waiting(store: Datastore, port: int, waiting: int) -> bool:
    async with store:
        store.reconcile([Endpoint("v-rank-0", "127.0.0.1", port)])
        return await settle(store, lambda: store.endpoints()[0].metrics.waiting == waiting, 1.0)
