"""Envoy clusters and the small typed pieces every part of the bootstrap shares.

Private to `envoy_config`: it takes plain values so that the public dataclasses live in one place.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import betterproto2
from envoy_data_plane.envoy.config.cluster.v3 import (
    CircuitBreakers,
    CircuitBreakersThresholds,
    Cluster,
    ClusterDiscoveryType,
    ClusterLbPolicy,
    ClusterOriginalDstLbConfig,
)
from envoy_data_plane.envoy.config.core.v3 import (
    Address,
    Http2ProtocolOptions,
    SocketAddress,
    TransportSocket,
)
from envoy_data_plane.envoy.config.core.v3 import HttpProtocolOptions as CoreHttpProtocolOptions
from envoy_data_plane.envoy.config.endpoint.v3 import (
    ClusterLoadAssignment,
    Endpoint,
    LbEndpoint,
    LocalityLbEndpoints,
)
from envoy_data_plane.envoy.extensions.transport_sockets.tls.v3 import (
    CommonTlsContext,
    UpstreamTlsContext,
)
from envoy_data_plane.envoy.extensions.upstreams.http.v3 import (
    HttpProtocolOptions,
    HttpProtocolOptionsExplicitHttpConfig,
)
from envoy_data_plane.google import protobuf

GENEROUS_LIMIT = 40_000
"""Requests and connections: tests and benchmarks must never trip Envoy's limits."""

_CONNECT_TIMEOUT = datetime.timedelta(seconds=1)
_HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def static_cluster(name: str, endpoints: Sequence[tuple[str, int]]) -> Cluster:
    """A round-robin cluster over fixed endpoints, HTTP/1.1 unless changed."""
    lb_endpoints = [LbEndpoint(endpoint=Endpoint(address=address(h, p))) for h, p in endpoints]
    return Cluster(
        name=name,
        type=ClusterDiscoveryType.STATIC,
        connect_timeout=_CONNECT_TIMEOUT,
        load_assignment=ClusterLoadAssignment(
            cluster_name=name, endpoints=[LocalityLbEndpoints(lb_endpoints=lb_endpoints)]
        ),
        circuit_breakers=_generous_circuit_breakers(),
    )


def original_dst_cluster(name: str, header: str) -> Cluster:
    """A cluster that sends each request to the host:port named in its `header`."""
    return Cluster(
        name=name,
        type=ClusterDiscoveryType.ORIGINAL_DST,
        lb_policy=ClusterLbPolicy.CLUSTER_PROVIDED,
        connect_timeout=_CONNECT_TIMEOUT,
        original_dst_lb_config=ClusterOriginalDstLbConfig(
            use_http_header=True, http_header_name=header
        ),
        circuit_breakers=_generous_circuit_breakers(),
    )


def grpc_cluster(
    name: str,
    host: str,
    port: int,
    *,
    tls: bool,
    max_concurrent_streams: int | None = None,
    max_requests_per_connection: int | None = None,
) -> Cluster:
    """A STATIC cluster speaking HTTP/2, as gRPC needs; TLS skips verification on purpose.
    The limits per connection are left to Envoy unless given (`ExtProcFilter`)."""
    cluster = static_cluster(name, ((host, port),))
    http2 = HttpProtocolOptions(
        explicit_http_config=HttpProtocolOptionsExplicitHttpConfig(
            http2_protocol_options=Http2ProtocolOptions(
                max_concurrent_streams=max_concurrent_streams
            )
        )
    )
    if max_requests_per_connection is not None:
        http2.common_http_protocol_options = CoreHttpProtocolOptions(
            max_requests_per_connection=max_requests_per_connection
        )
    cluster.typed_extension_protocol_options = {_HTTP_PROTOCOL_OPTIONS: pack(http2)}
    if tls:
        # No validation_context: our processors serve a self-signed certificate, as upstream's do.
        context = UpstreamTlsContext(common_tls_context=CommonTlsContext(alpn_protocols=["h2"]))
        cluster.transport_socket = TransportSocket(
            name="envoy.transport_sockets.tls", typed_config=pack(context)
        )
    return cluster


def address(host: str, port: int) -> Address:
    return Address(socket_address=SocketAddress(address=host, port_value=port))


def pack(message: betterproto2.Message) -> protobuf.Any:
    return protobuf.Any.pack(message)


def _generous_circuit_breakers() -> CircuitBreakers:
    limit = GENEROUS_LIMIT
    thresholds = CircuitBreakersThresholds(
        max_connections=limit, max_pending_requests=limit, max_requests=limit
    )
    return CircuitBreakers(thresholds=[thresholds])
