"""Tests for the failure modes of the gateway bootstrap (`ExtProcFilter.failure_mode`) and the
pool's fallback cluster: the shape Envoy gets, and what a client sees through a real Envoy when
the processor is not there at all."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from igw.common.testing.echo import run_echo_backends
from igw.common.testing.envoy_config import (
    PROCESSOR_FAILED_BODY,
    ExtProcFilter,
    FailureMode,
    HeaderRoute,
    OriginalDstCluster,
    gateway_bootstrap,
)
from igw.common.testing.envoy_process import EnvoyProcess
from igw.common.testing.pytest_plugin import EnvoyFactory

DEST = "x-gateway-destination-endpoint"
_POOL = OriginalDstCluster("pool", fallback_endpoints=(("127.0.0.1", 18001), ("127.0.0.1", 18002)))


def _bootstrap(mode: FailureMode, **overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "listen_port": 10000,
        "admin_port": 9901,
        "ext_procs": (ExtProcFilter("bbr", 19001, failure_mode=mode), ExtProcFilter("epp", 19002)),
        "routes": (HeaderRoute("x-gateway-model-name", "m", "pool"),),
        "clusters": (_POOL,),
        "default_cluster": None,
    }
    return gateway_bootstrap(**{**arguments, **overrides})


def _hcm(config: dict[str, Any]) -> dict[str, Any]:
    listener = config["static_resources"]["listeners"][0]
    manager: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return manager


def _cluster(config: dict[str, Any], name: str) -> dict[str, Any]:
    (cluster,) = (c for c in config["static_resources"]["clusters"] if c["name"] == name)
    found: dict[str, Any] = cluster
    return found


@pytest.mark.envoy
@pytest.mark.parametrize("mode", ["FailOpen", "FailClose"])
def test_real_envoy_accepts_both_failure_modes(mode: FailureMode) -> None:
    EnvoyProcess(_bootstrap(mode)).validate()


def test_fail_open_allows_failure_and_drops_a_dead_processor_before_its_streams() -> None:
    config = _bootstrap("FailOpen")
    filters = {f["name"]: f["typed_config"] for f in _hcm(config)["http_filters"]}
    assert filters["ext_proc.bbr"]["failure_mode_allow"] is True
    assert filters["ext_proc.epp"].get("failure_mode_allow", False) is False  # FailClose default

    bbr = _cluster(config, "ext_proc_bbr")
    [check] = bbr["health_checks"]
    assert "grpc_health_check" in check
    assert bbr["outlier_detection"]["consecutive_local_origin_failure"] == 1
    # Envoy's default panic threshold would send streams to an all-unhealthy cluster anyway.
    # (Present with value 0; proto3 JSON leaves the zero out.)
    assert bbr["common_lb_config"]["healthy_panic_threshold"].get("value", 0.0) == 0.0
    epp = _cluster(config, "ext_proc_epp")
    assert "health_checks" not in epp
    assert "outlier_detection" not in epp


def test_routes_to_a_pool_with_fallback_split_on_the_destination_header() -> None:
    routes = _hcm(_bootstrap("FailClose"))["route_config"]["virtual_hosts"][0]["routes"]

    picked, fallback, not_found = routes
    assert picked["route"]["cluster"] == "pool"
    assert {"name": DEST, "present_match": True} in picked["match"]["headers"]
    assert fallback["route"]["cluster"] == "pool_fallback"
    assert [h["name"] for h in fallback["match"]["headers"]] == ["x-gateway-model-name"]
    assert not_found["direct_response"]["status"] == 404
    [locality] = _cluster(_bootstrap("FailClose"), "pool_fallback")["load_assignment"]["endpoints"]
    ports = [e["endpoint"]["address"]["socket_address"]["port_value"]
             for e in locality["lb_endpoints"]]  # fmt: skip
    assert ports == [18001, 18002]


def test_a_pool_without_fallback_keeps_one_route_and_no_header_filter() -> None:
    config = _bootstrap("FailClose", clusters=(OriginalDstCluster("pool"),))
    hcm = _hcm(config)
    *routes, _not_found = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert [r["route"]["cluster"] for r in routes] == ["pool"]
    assert hcm["http_filters"][0]["name"] == "ext_proc.bbr"  # nothing to strip


def test_the_clients_destination_header_is_removed_before_any_processor() -> None:
    filters = _hcm(_bootstrap("FailOpen"))["http_filters"]
    assert filters[0]["name"] == f"lua.strip-{DEST}"
    source = filters[0]["typed_config"]["default_source_code"]["inline_string"]
    assert f'remove("{DEST}")' in source
    assert "clearRouteCache()" in source  # the route was picked on the client's header


def test_a_route_for_requests_without_a_header() -> None:
    config = _bootstrap(
        "FailClose",
        routes=(HeaderRoute("x-gateway-model-name", None, "pool"),),
        clusters=(OriginalDstCluster("pool"),),
    )
    [matcher] = _hcm(config)["route_config"]["virtual_hosts"][0]["routes"][0]["match"]["headers"]
    assert matcher == {"name": "x-gateway-model-name", "present_match": True, "invert_match": True}


@contextlib.asynccontextmanager
async def _gateway(
    envoy_factory: EnvoyFactory, dead: int, mode: FailureMode
) -> AsyncIterator[tuple[str, dict[str, int]]]:
    async with run_echo_backends("pod-a", "pod-b") as pods:
        pool = OriginalDstCluster("pool", fallback_endpoints=(("127.0.0.1", pods["pod-a"].port),))
        config = gateway_bootstrap(
            ext_procs=(ExtProcFilter("epp", dead, tls=False, failure_mode=mode),),
            routes=(), clusters=(pool,), default_cluster="pool",
        )  # fmt: skip
        envoy = await envoy_factory.start_async(config)
        yield envoy.url, {name: pod.port for name, pod in pods.items()}


@pytest.mark.envoy
async def test_fail_open_sends_requests_past_a_processor_that_never_started(
    envoy_factory: EnvoyFactory, refused_port: int
) -> None:
    async with (
        _gateway(envoy_factory, refused_port, "FailOpen") as (url, ports),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
    ):
        served = []
        for _ in range(10):
            # The client names pod-b itself: with no EPP to overwrite it, it must not count.
            headers = {DEST: f"127.0.0.1:{ports['pod-b']}"}
            async with session.post(url + "/v1/completions", data=b"{}", headers=headers) as r:
                assert r.status == 200, await r.text()
                served.append(json.loads(await r.read())["served_by"])
    assert set(served) == {"pod-a"}


@pytest.mark.envoy
async def test_fail_close_answers_500_without_a_processor(
    envoy_factory: EnvoyFactory, refused_port: int
) -> None:
    async with (
        _gateway(envoy_factory, refused_port, "FailClose") as (url, _),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
        session.post(url + "/v1/completions", data=b"{}") as response,
    ):
        assert response.status == 500
        body = await response.text()
    # Envoy's own reply is empty; the client learns why from the body.
    assert body.startswith(PROCESSOR_FAILED_BODY + "ext_proc_error_gRPC_error_14"), body
