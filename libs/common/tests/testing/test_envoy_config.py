"""Tests for the typed gateway bootstrap: its shape, and that real Envoy accepts it."""

from __future__ import annotations

from typing import Any

import pytest

from igw.common.testing.envoy_config import (
    SERVED_ENDPOINT_HEADER,
    SERVED_ENDPOINT_LUA,
    ExtProcFilter,
    HeaderRoute,
    LuaFilter,
    OriginalDstCluster,
    OtelTracing,
    StaticCluster,
    gateway_bootstrap,
)
from igw.common.testing.envoy_process import EnvoyError, EnvoyProcess

_BACKENDS = (
    StaticCluster("backend-a", (("127.0.0.1", 18001),)),
    StaticCluster("backend-b", (("127.0.0.1", 18002), ("127.0.0.1", 18003))),
)
_ROUTES = (
    HeaderRoute("x-gateway-model-name", "a", "backend-a"),
    HeaderRoute("x-gateway-model-name", "b", "backend-b"),
)


_SUBSET_LUA = """
function envoy_on_request(handle)
  handle:streamInfo():dynamicMetadata():set("envoy.lb.subset_hint", "k", {"127.0.0.2"})
end
"""


def _bootstrap(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "listen_port": 10000,
        "admin_port": 9901,
        "ext_procs": (ExtProcFilter("bbr", 19001), ExtProcFilter("epp", 19002)),
        "routes": _ROUTES,
        "clusters": _BACKENDS,
        "default_cluster": "backend-a",
    }
    return gateway_bootstrap(**{**arguments, **overrides})


def _hcm(config: dict[str, Any]) -> dict[str, Any]:
    manager: dict[str, Any] = config["static_resources"]["listeners"][0]["filter_chains"][0][
        "filters"
    ][0]["typed_config"]
    return manager


def _cluster(config: dict[str, Any], name: str) -> dict[str, Any]:
    (cluster,) = (c for c in config["static_resources"]["clusters"] if c["name"] == name)
    found: dict[str, Any] = cluster
    return found


@pytest.mark.envoy
@pytest.mark.parametrize(
    "config",
    [
        pytest.param(_bootstrap(tracing=OtelTracing(4317)), id="two-duplex-tls-filters-tracing"),
        pytest.param(
            _bootstrap(
                ext_procs=(
                    ExtProcFilter(
                        "epp",
                        19002,
                        tls=False,
                        request_body_mode="BUFFERED",
                        request_trailer_mode="SKIP",
                        status_on_error=503,
                    ),
                )
            ),
            id="buffered-plaintext-503",
        ),
        pytest.param(
            _bootstrap(
                clusters=(*_BACKENDS, OriginalDstCluster("endpoints")),
                default_cluster="endpoints",
                access_log=False,
            ),
            id="original-dst-default",
        ),
        pytest.param(_bootstrap(ext_procs=(), default_cluster=None), id="no-filters-404-default"),
        pytest.param(
            _bootstrap(
                ext_procs=(
                    ExtProcFilter("bbr", 19001),
                    LuaFilter("hint", _SUBSET_LUA),
                    ExtProcFilter("epp", 19002, forwarding_namespaces=("envoy.lb.subset_hint",)),
                )
            ),
            id="lua-between-processors-forwarding-metadata",
        ),
        pytest.param(
            _bootstrap(
                clusters=(OriginalDstCluster("endpoints"),),
                routes=(),
                default_cluster="endpoints",
                served_endpoint_metadata=True,
            ),
            id="served-endpoint-metadata",
        ),
        pytest.param(
            _bootstrap(
                ext_procs=(
                    ExtProcFilter(
                        "epp", 19002, max_concurrent_streams=4, max_requests_per_connection=200
                    ),
                )
            ),
            id="connection-limits-for-workers",
        ),
    ],
)
def test_real_envoy_accepts_the_bootstrap(config: dict[str, Any]) -> None:
    EnvoyProcess(config).validate()


@pytest.mark.envoy
def test_envoy_rejection_carries_envoys_message() -> None:
    config = _bootstrap()
    # Bypass the builder's own check to see Envoy's: a route to a cluster nobody defined.
    _hcm(config)["route_config"]["virtual_hosts"][0]["routes"][0]["route"]["cluster"] = "ghost"

    with pytest.raises(EnvoyError, match="unknown cluster 'ghost'"):
        EnvoyProcess(config).validate()


def test_filters_run_in_the_given_order_then_the_router() -> None:
    names = [f["name"] for f in _hcm(_bootstrap())["http_filters"]]

    assert names == ["ext_proc.bbr", "ext_proc.epp", "envoy.filters.http.router"]


def test_a_lua_filter_runs_where_it_is_listed_and_needs_no_cluster() -> None:
    config = _bootstrap(
        ext_procs=(ExtProcFilter("bbr", 19001), LuaFilter("hint", _SUBSET_LUA)),
    )
    filters = _hcm(config)["http_filters"]

    assert [f["name"] for f in filters] == ["ext_proc.bbr", "lua.hint", "envoy.filters.http.router"]
    assert filters[1]["typed_config"]["default_source_code"] == {"inline_string": _SUBSET_LUA}
    assert not [c for c in config["static_resources"]["clusters"] if "hint" in c["name"]]


def test_forwarded_metadata_namespaces_reach_the_processor() -> None:
    epp = ExtProcFilter("epp", 19002, forwarding_namespaces=("envoy.lb.subset_hint",))
    processor = _hcm(_bootstrap(ext_procs=(epp,)))["http_filters"][0]["typed_config"]

    assert processor["metadata_options"]["forwarding_namespaces"] == {
        "untyped": ["envoy.lb.subset_hint"]
    }


def test_request_trailers_are_enabled_so_they_reach_the_processors() -> None:
    assert _hcm(_bootstrap())["http_protocol_options"] == {"enable_trailers": True}


@pytest.mark.parametrize(
    ("tls", "expect_tls_socket"),
    [pytest.param(True, True, id="tls"), pytest.param(False, False, id="plaintext")],
)
def test_ext_proc_cluster_speaks_http2(tls: bool, expect_tls_socket: bool) -> None:
    config = _bootstrap(ext_procs=(ExtProcFilter("bbr", 19001, tls=tls),))
    cluster = _cluster(config, "ext_proc_bbr")

    options = cluster["typed_extension_protocol_options"]
    (http,) = options.values()
    assert http["explicit_http_config"] == {"http2_protocol_options": {}}
    assert ("transport_socket" in cluster) is expect_tls_socket
    if expect_tls_socket:
        context = cluster["transport_socket"]["typed_config"]["common_tls_context"]
        # No validation context: the processors' certificate is self-signed.
        assert context == {"alpn_protocols": ["h2"]}


def test_ext_proc_cluster_limits_per_connection_when_asked() -> None:
    """For an EPP with workers: several connections, each replaced after so many streams."""
    limited = ExtProcFilter("epp", 19002, max_concurrent_streams=4, max_requests_per_connection=200)
    (http,) = _cluster(_bootstrap(ext_procs=(limited,)), "ext_proc_epp")[
        "typed_extension_protocol_options"
    ].values()
    assert http["explicit_http_config"] == {"http2_protocol_options": {"max_concurrent_streams": 4}}
    assert http["common_http_protocol_options"] == {"max_requests_per_connection": 200}


def test_ext_proc_filter_accepts_lb_metadata_and_modes() -> None:
    config = _bootstrap(ext_procs=(ExtProcFilter("epp", 19002, status_on_error=503),))
    processor = _hcm(config)["http_filters"][0]["typed_config"]

    assert processor["metadata_options"] == {"receiving_namespaces": {"untyped": ["envoy.lb"]}}
    assert processor["processing_mode"]["request_body_mode"] == "FULL_DUPLEX_STREAMED"
    assert processor["processing_mode"]["request_trailer_mode"] == "SEND"
    assert processor["status_on_error"] == {"code": "ServiceUnavailable"}
    assert processor["grpc_service"]["envoy_grpc"]["cluster_name"] == "ext_proc_epp"


def test_no_default_cluster_answers_404() -> None:
    routes = _hcm(_bootstrap(default_cluster=None))["route_config"]["virtual_hosts"][0]["routes"]

    assert routes[-1]["direct_response"]["status"] == 404
    assert [r["route"]["cluster"] for r in routes[:-1]] == ["backend-a", "backend-b"]


def test_tracing_exports_to_an_http2_collector_cluster() -> None:
    config = _bootstrap(tracing=OtelTracing(4317, service_name="gw"))
    tracing = _hcm(config)["tracing"]

    assert tracing["random_sampling"] == {"value": 100.0}
    assert tracing["provider"]["name"] == "envoy.tracers.opentelemetry"
    assert tracing["provider"]["typed_config"]["service_name"] == "gw"
    collector = _cluster(config, "otel_collector")
    assert "transport_socket" not in collector
    assert "typed_extension_protocol_options" in collector


def test_original_dst_cluster_routes_by_header() -> None:
    config = _bootstrap(clusters=(*_BACKENDS, OriginalDstCluster("endpoints")))
    cluster = _cluster(config, "endpoints")

    assert cluster["type"] == "ORIGINAL_DST"
    assert cluster["lb_policy"] == "CLUSTER_PROVIDED"
    assert cluster["original_dst_lb_config"] == {
        "use_http_header": True,
        "http_header_name": "x-gateway-destination-endpoint",
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"default_cluster": "nowhere"}, "undefined clusters", id="unknown-default"),
        pytest.param(
            {"routes": (HeaderRoute("x-gateway-model-name", "c", "backend-c"),)},
            "undefined clusters",
            id="unknown-route-cluster",
        ),
        pytest.param(
            {"clusters": (*_BACKENDS, StaticCluster("backend-a", ()))},
            "duplicate cluster names",
            id="duplicate-cluster",
        ),
        pytest.param(
            {"ext_procs": (ExtProcFilter("bbr", 1), ExtProcFilter("bbr", 2))},
            "duplicate cluster names",
            id="duplicate-ext-proc",
        ),
    ],
)
def test_inconsistent_config_is_refused_before_envoy_sees_it(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _bootstrap(**overrides)


def test_served_endpoint_is_stamped_by_the_router_and_moved_to_metadata_first() -> None:
    config = _bootstrap(served_endpoint_metadata=True)
    hcm = _hcm(config)

    # The Lua filter sits right before the router: first to see the response, ahead of every
    # ext_proc filter, so their response headers message already carries the metadata.
    names = [f["name"] for f in hcm["http_filters"]]
    assert names == ["ext_proc.bbr", "ext_proc.epp", "lua.served-endpoint",
                     "envoy.filters.http.router"]  # fmt: skip
    lua = hcm["http_filters"][2]["typed_config"]["default_source_code"]["inline_string"]
    assert lua == SERVED_ENDPOINT_LUA
    assert '"envoy.lb", "x-gateway-destination-endpoint-served"' in lua
    [stamp] = hcm["route_config"]["virtual_hosts"][0]["response_headers_to_add"]
    assert stamp["header"] == {"key": SERVED_ENDPOINT_HEADER, "value": "%UPSTREAM_REMOTE_ADDRESS%"}


def test_no_served_endpoint_report_by_default() -> None:
    hcm = _hcm(_bootstrap())
    assert "lua.served-endpoint" not in [f["name"] for f in hcm["http_filters"]]
    assert "response_headers_to_add" not in hcm["route_config"]["virtual_hosts"][0]
