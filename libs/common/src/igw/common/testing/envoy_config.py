"""Typed Envoy bootstrap for a gateway that chains ext_proc filters in front of model servers.

The config is built from envoy-data-plane's typed messages, so a wrong field name or type fails
here rather than as an Envoy startup error, and rendered to the JSON Envoy reads. This runs once per
test or local gateway, far from the request path, where the 50-300 us a betterproto2 message
costs does not matter.

What the layout encodes (feasibility §1, each learned by running Envoy 1.40):

* every ext_proc cluster speaks HTTP/2, over TLS without verification by default, because our
  processors serve a self-signed certificate as upstream's do;
* the ext_proc filter accepts dynamic metadata only from allow-listed namespaces (`envoy.lb`, which
  ORIGINAL_DST routing reads);
* HTTP/1.1 request trailers reach the processors only with `enable_trailers` on the HCM;
* the served-endpoint report (`served_endpoint_metadata=True`, upstream-gie.md §1.6): the router
  stamps the upstream it connected to on the response and a Lua filter moves the stamp into the
  `envoy.lb` dynamic metadata GIE's EPP reads (`_envoy_lua` explains how);
* failure modes (GIE's `failureMode`, upstream-gie.md §1.11): `FailClose` (the default) answers
  500 (or `status_on_error`) when the processor fails; `FailOpen` lets the request go on without
  it. Envoy's `failure_mode_allow` alone does not fail open for a dead processor in full-duplex
  mode, so FailOpen also health-checks the processor (it must serve gRPC health on its ext_proc
  port: `--health-checking`) and ejects it at its first refused connection; a request arriving
  after that passes at once (`_envoy_failover`). A request the processor was handling when it
  died still fails in FULL_DUPLEX_STREAMED mode (Envoy has handed it the body); in BUFFERED mode
  Envoy keeps the body and continues. An EPP that failed open sets no destination, so an
  `OriginalDstCluster` with `fallback_endpoints` sends such requests to those endpoints
  (Envoy's round robin) and a client's own destination header is removed first;
* ext_proc streams end with a half-close (runtime key `GRACEFUL_EXT_PROC_CLOSE`), not Envoy's
  default reset: grpc.aio leaks about 120 bytes of native memory per server stream the client
  cancels while the handler awaits its next message (grpc/grpc#43360, open in grpcio 1.85), so
  Envoy's reset at the end of every request grew a BBR by 11 MiB per 100k requests
  (bench/results/soak.md). With the key, Envoy half-closes, the processor sees the end of the
  stream and ends the call itself (Envoy waits up to 1 s for that, then resets).

The typed pieces live in private modules that take plain values, so the public dataclasses stay
here: clusters in `_envoy_clusters`, Lua filters in `_envoy_lua`, access log and tracing in
`_envoy_telemetry`.
"""

from __future__ import annotations

import datetime
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import betterproto2

with warnings.catch_warnings():
    # envoy-data-plane 2.2 declares its oneof validators in a form pydantic 2.12 deprecated (it
    # still works); the warning fires once, at import, and would fail warnings-as-errors runs.
    warnings.filterwarnings(
        "ignore",
        message="Using `@model_validator` with mode='after' on a classmethod",
        category=DeprecationWarning,
    )
    from envoy_data_plane.envoy.config.bootstrap.v3 import (
        Admin,
        Bootstrap,
        BootstrapStaticResources,
    )
    from envoy_data_plane.envoy.config.cluster.v3 import Cluster
    from envoy_data_plane.envoy.config.core.v3 import (
        GrpcService,
        GrpcServiceEnvoyGrpc,
        Http1ProtocolOptions,
    )
    from envoy_data_plane.envoy.config.listener.v3 import Filter, FilterChain, Listener
    from envoy_data_plane.envoy.config.overload.v3 import OverloadManager, ResourceMonitor
    from envoy_data_plane.envoy.extensions.filters.http.ext_proc.v3 import (
        ExternalProcessor,
        MetadataOptions,
        MetadataOptionsMetadataNamespaces,
        ProcessingMode,
        ProcessingModeBodySendMode,
        ProcessingModeHeaderSendMode,
    )
    from envoy_data_plane.envoy.extensions.filters.http.router.v3 import Router
    from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3 import (
        HttpConnectionManager,
        HttpFilter,
    )
    from envoy_data_plane.envoy.extensions.resource_monitors.downstream_connections.v3 import (
        DownstreamConnectionsConfig,
    )
    from envoy_data_plane.envoy.type.v3 import HttpStatus, StatusCode

    from igw.common.testing import (
        _envoy_clusters,
        _envoy_failover,
        _envoy_lua,
        _envoy_routes,
        _envoy_telemetry,
    )
    from igw.common.testing._envoy_failover import PROCESSOR_FAILED_BODY
    from igw.common.testing._envoy_lua import SERVED_ENDPOINT_HEADER, SERVED_ENDPOINT_LUA
    from igw.common.testing._envoy_routes import NO_ROUTE_BODY
    from igw.common.testing._envoy_telemetry import ACCESS_LOG_FORMAT

__all__ = [
    "ACCESS_LOG_FORMAT",
    "GRACEFUL_EXT_PROC_CLOSE",
    "NO_ROUTE_BODY",
    "PROCESSOR_FAILED_BODY",
    "SERVED_ENDPOINT_HEADER",
    "SERVED_ENDPOINT_LUA",
    "BodyMode",
    "ExtProcFilter",
    "FailureMode",
    "HeaderMode",
    "HeaderRoute",
    "LuaFilter",
    "OriginalDstCluster",
    "OtelTracing",
    "StaticCluster",
    "gateway_bootstrap",
]

BodyMode = Literal["FULL_DUPLEX_STREAMED", "BUFFERED", "STREAMED", "NONE"]
HeaderMode = Literal["SEND", "SKIP"]
FailureMode = Literal["FailOpen", "FailClose"]

GRACEFUL_EXT_PROC_CLOSE = {"envoy.reloadable_features.ext_proc_graceful_grpc_close": True}
"""The runtime key that has Envoy half-close ext_proc streams (module docstring)."""


@dataclass(frozen=True, slots=True)
class ExtProcFilter:
    """One `envoy.filters.http.ext_proc` filter and the cluster of its gRPC processor."""

    name: str
    port: int
    host: str = "127.0.0.1"
    tls: bool = True
    request_body_mode: BodyMode = "FULL_DUPLEX_STREAMED"
    request_trailer_mode: HeaderMode = "SEND"
    response_header_mode: HeaderMode = "SKIP"
    response_body_mode: BodyMode = "NONE"
    response_trailer_mode: HeaderMode = "SKIP"
    failure_mode: FailureMode = "FailClose"
    """What a request does when the processor fails or is gone (module docstring)."""
    message_timeout_s: float = 5.0
    metadata_namespaces: tuple[str, ...] = ("envoy.lb",)
    forwarding_namespaces: tuple[str, ...] = ()
    """Dynamic metadata namespaces sent to the processor (e.g. `envoy.lb.subset_hint`)."""
    allow_mode_override: bool = False
    status_on_error: int | None = None  # None keeps Envoy's 500
    max_concurrent_streams: int | None = None
    """Streams Envoy puts on one connection to the processor at a time (None: HTTP/2's own)."""
    max_requests_per_connection: int | None = None
    """Streams one connection carries in all before Envoy opens a new one (None: no limit).
    With both, Envoy keeps several connections and keeps replacing them, so that the kernel
    spreads them over the workers of an `igw-epp --workers N` sharing the port
    (docs/concepts/workers.md, "Spreading the load")."""

    @property
    def cluster_name(self) -> str:
        return f"ext_proc_{self.name}"


@dataclass(frozen=True, slots=True)
class LuaFilter:
    """An `envoy.filters.http.lua` filter running `source` (its `envoy_on_request` and so on)."""

    name: str
    source: str


@dataclass(frozen=True, slots=True)
class HeaderRoute:
    """Requests whose `header` equals `value` exactly (value None: that lack the header) go to
    `cluster`."""

    header: str
    value: str | None
    cluster: str


@dataclass(frozen=True, slots=True)
class StaticCluster:
    """A plain HTTP/1.1 upstream with fixed endpoints, round-robin."""

    name: str
    endpoints: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class OriginalDstCluster:
    """An upstream whose host:port the EPP names in a request header (ORIGINAL_DST)."""

    name: str
    header: str = "x-gateway-destination-endpoint"
    fallback_endpoints: tuple[tuple[str, int], ...] = ()
    """Where a request without `header` goes (the EPP failed open), round robin; empty: nowhere
    (Envoy's 503). With endpoints, a client's own `header` is removed before any filter runs."""

    @property
    def fallback_name(self) -> str:
        return f"{self.name}_fallback"


@dataclass(frozen=True, slots=True)
class OtelTracing:
    """Envoy's OpenTelemetry tracer exporting every request's spans over OTLP/gRPC."""

    port: int
    service_name: str = "igw-gateway"
    cluster_name: str = "otel_collector"


def gateway_bootstrap(
    *,
    listen_port: int = 0,
    admin_port: int = 0,
    ext_procs: Sequence[ExtProcFilter | LuaFilter],
    routes: Sequence[HeaderRoute],
    clusters: Sequence[StaticCluster | OriginalDstCluster],
    default_cluster: str | None,
    tracing: OtelTracing | None = None,
    access_log: bool = True,
    route_timeout_s: float = 300,
    served_endpoint_metadata: bool = False,
) -> dict[str, Any]:
    """Return Envoy's JSON bootstrap (as a dict) for one gateway listener on 127.0.0.1.

    Ports 0 (the default) let Envoy bind free ones, which `EnvoyProcess` reads back.

    Filters run in `ext_procs` order (Lua filters among them), then the router. `routes` are
    tried in order; a request matching none goes to `default_cluster`, or gets a 404 when it is
    None. `served_endpoint_metadata` reports the endpoint that served each response as GIE
    expects a gateway to (module docstring). Raises ValueError when a route names a cluster that
    is not defined or two clusters share a name.
    """
    upstreams = [cluster for spec in clusters for cluster in _upstream_clusters(spec)]
    internal = _internal_clusters(ext_procs, tracing)
    _check_cluster_names([*upstreams, *internal], routes, default_cluster)
    pools = [c for c in clusters if isinstance(c, OriginalDstCluster) and c.fallback_endpoints]
    route_config = _envoy_routes.route_config(
        [(r.header, r.value, r.cluster) for r in routes],
        default_cluster,
        {c.name: (c.header, c.fallback_name) for c in pools},
        route_timeout_s,
        served_endpoint=served_endpoint_metadata,
    )
    hcm = HttpConnectionManager(
        stat_prefix="gateway",
        http_protocol_options=Http1ProtocolOptions(enable_trailers=True),
        route_config=route_config,
        local_reply_config=_envoy_failover.processor_failure_reply(),
        http_filters=_http_filters(
            ext_procs, [c.header for c in pools], served_endpoint=served_endpoint_metadata
        ),
        access_log=[_envoy_telemetry.stdout_access_log()] if access_log else [],
        tracing=(
            _envoy_telemetry.tracing(tracing.service_name, tracing.cluster_name)
            if tracing
            else None
        ),
    )
    bootstrap = Bootstrap(
        overload_manager=_overload_manager(),
        admin=Admin(address=_envoy_clusters.address("127.0.0.1", admin_port)),
        static_resources=BootstrapStaticResources(
            listeners=[_listener(listen_port, hcm)], clusters=[*upstreams, *internal]
        ),
    )
    config: dict[str, Any] = bootstrap.to_dict(casing=betterproto2.Casing.SNAKE)
    config["layered_runtime"] = _layered_runtime(tracing=tracing is not None)
    return config


def _layered_runtime(*, tracing: bool) -> dict[str, Any]:
    """The runtime keys: a half-close for ext_proc streams (module docstring), and with tracing
    each request's spans exported at once. (A Struct-valued layer is simpler as JSON.)"""
    runtime = dict(GRACEFUL_EXT_PROC_CLOSE)
    if tracing:
        runtime.update(_envoy_telemetry.flush_spans_at_once())
    return {"layers": [{"name": "static", "static_layer": runtime}]}


def _upstream_clusters(spec: StaticCluster | OriginalDstCluster) -> list[Cluster]:
    if isinstance(spec, StaticCluster):
        return [_envoy_clusters.static_cluster(spec.name, spec.endpoints)]
    clusters = [_envoy_clusters.original_dst_cluster(spec.name, spec.header)]
    if spec.fallback_endpoints:
        clusters.append(
            _envoy_failover.fallback_cluster(spec.fallback_name, spec.fallback_endpoints)
        )
    return clusters


def _internal_clusters(
    ext_procs: Sequence[ExtProcFilter | LuaFilter], tracing: OtelTracing | None
) -> list[Cluster]:
    """The gateway's own gRPC peers: each ext_proc processor and the OTLP collector."""
    internal = []
    for f in ext_procs:
        if isinstance(f, ExtProcFilter):
            cluster = _envoy_clusters.grpc_cluster(
                f.cluster_name, f.host, f.port, tls=f.tls,
                max_concurrent_streams=f.max_concurrent_streams,
                max_requests_per_connection=f.max_requests_per_connection,
            )  # fmt: skip
            if f.failure_mode == "FailOpen":
                _envoy_failover.health_and_ejection(cluster)
            internal.append(cluster)
    if tracing:
        internal.append(
            _envoy_clusters.grpc_cluster(tracing.cluster_name, "127.0.0.1", tracing.port, tls=False)
        )
    return internal


def _check_cluster_names(
    all_clusters: Sequence[Cluster], routes: Sequence[HeaderRoute], default_cluster: str | None
) -> None:
    names = [c.name for c in all_clusters]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate cluster names in {names}")
    wanted = {r.cluster for r in routes} | ({default_cluster} if default_cluster else set())
    if missing := sorted(wanted - set(names)):
        raise ValueError(f"routes name undefined clusters {missing}; defined: {names}")


def _listener(port: int, hcm: HttpConnectionManager) -> Listener:
    manager = Filter(
        name="envoy.filters.network.http_connection_manager",
        typed_config=_envoy_clusters.pack(hcm),
    )
    return Listener(
        name="gateway",
        address=_envoy_clusters.address("127.0.0.1", port),
        filter_chains=[FilterChain(filters=[manager])],
    )


def _http_filters(
    specs: Sequence[ExtProcFilter | LuaFilter], stripped: Sequence[str], *, served_endpoint: bool
) -> list[HttpFilter]:
    """The HCM's filter chain: removing the client's `stripped` headers, `specs` in order, the
    served-endpoint report, the router."""
    filters = [_envoy_failover.strip_header_filter(header) for header in sorted(set(stripped))]
    filters += [
        _envoy_lua.lua_filter(s.name, s.source) if isinstance(s, LuaFilter) else _ext_proc_filter(s)
        for s in specs
    ]
    if served_endpoint:
        filters.append(_envoy_lua.served_endpoint_filter())
    router = HttpFilter(
        name="envoy.filters.http.router", typed_config=_envoy_clusters.pack(Router())
    )
    return [*filters, router]


def _ext_proc_filter(spec: ExtProcFilter) -> HttpFilter:
    mode = ProcessingMode(
        request_header_mode=ProcessingModeHeaderSendMode.SEND,
        request_body_mode=ProcessingModeBodySendMode[spec.request_body_mode],
        request_trailer_mode=ProcessingModeHeaderSendMode[spec.request_trailer_mode],
        response_header_mode=ProcessingModeHeaderSendMode[spec.response_header_mode],
        response_body_mode=ProcessingModeBodySendMode[spec.response_body_mode],
        response_trailer_mode=ProcessingModeHeaderSendMode[spec.response_trailer_mode],
    )
    processor = ExternalProcessor(
        grpc_service=GrpcService(envoy_grpc=GrpcServiceEnvoyGrpc(cluster_name=spec.cluster_name)),
        processing_mode=mode,
        failure_mode_allow=spec.failure_mode == "FailOpen",
        message_timeout=datetime.timedelta(seconds=spec.message_timeout_s),
        allow_mode_override=spec.allow_mode_override,
        metadata_options=MetadataOptions(
            receiving_namespaces=MetadataOptionsMetadataNamespaces(
                untyped=list(spec.metadata_namespaces)
            ),
            forwarding_namespaces=(
                MetadataOptionsMetadataNamespaces(untyped=list(spec.forwarding_namespaces))
                if spec.forwarding_namespaces
                else None
            ),
        ),
        status_on_error=(
            HttpStatus(code=StatusCode(spec.status_on_error))
            if spec.status_on_error is not None
            else None
        ),
    )
    return HttpFilter(name=f"ext_proc.{spec.name}", typed_config=_envoy_clusters.pack(processor))


def _overload_manager() -> OverloadManager:
    """Caps downstream connections, which also silences Envoy's start-up warning about no cap."""
    limit = DownstreamConnectionsConfig(
        max_active_downstream_connections=_envoy_clusters.GENEROUS_LIMIT
    )
    monitor = ResourceMonitor(
        name="envoy.resource_monitors.global_downstream_max_connections",
        typed_config=_envoy_clusters.pack(limit),
    )
    return OverloadManager(resource_monitors=[monitor])
