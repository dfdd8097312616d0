"""What the gateway reports about each request: an access log line, OpenTelemetry spans.

Private to `envoy_config`, which re-exports `ACCESS_LOG_FORMAT`; like `_envoy_clusters` it takes
plain values.
"""

from __future__ import annotations

from typing import Any

from envoy_data_plane.envoy.config.accesslog.v3 import AccessLog
from envoy_data_plane.envoy.config.core.v3 import (
    DataSource,
    GrpcService,
    GrpcServiceEnvoyGrpc,
    SubstitutionFormatString,
)
from envoy_data_plane.envoy.config.trace.v3 import OpenTelemetryConfig, TracingHttp
from envoy_data_plane.envoy.extensions.access_loggers.file.v3 import FileAccessLog
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3 import (
    HttpConnectionManagerTracing,
)
from envoy_data_plane.envoy.type.v3 import Percent

from igw.common.testing import _envoy_clusters

ACCESS_LOG_FORMAT = (
    '[%START_TIME%] "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
    "%RESPONSE_CODE_DETAILS% upstream=%UPSTREAM_HOST% model=%REQ(x-gateway-model-name)% "
    "dest=%REQ(x-gateway-destination-endpoint)% bytes_in=%BYTES_RECEIVED% dur=%DURATION%ms\n"
)

_FLUSH_SPANS_AT_ONCE = {
    "tracing.opentelemetry.flush_interval_ms": 200,
    "tracing.opentelemetry.min_flush_spans": 1,
}


def stdout_access_log() -> AccessLog:
    """One `ACCESS_LOG_FORMAT` line per request on Envoy's stdout."""
    log = FileAccessLog(
        path="/dev/stdout",
        log_format=SubstitutionFormatString(
            text_format_source=DataSource(inline_string=ACCESS_LOG_FORMAT)
        ),
    )
    return AccessLog(name="envoy.access_loggers.file", typed_config=_envoy_clusters.pack(log))


def tracing(service_name: str, cluster_name: str) -> HttpConnectionManagerTracing:
    """Every request traced, its spans exported over OTLP/gRPC to the collector `cluster_name`."""
    exporter = OpenTelemetryConfig(
        grpc_service=GrpcService(envoy_grpc=GrpcServiceEnvoyGrpc(cluster_name=cluster_name)),
        service_name=service_name,
    )
    return HttpConnectionManagerTracing(
        random_sampling=Percent(value=100.0),
        provider=TracingHttp(
            name="envoy.tracers.opentelemetry", typed_config=_envoy_clusters.pack(exporter)
        ),
    )


def flush_spans_at_once() -> dict[str, Any]:
    """Runtime keys that have the tracer export each request's spans at once.

    Envoy's OpenTelemetry tracer exports every 5 s or every 5 spans by default; a local gateway and
    its tests want each request's spans at once. (A Struct-valued runtime layer is simpler to state
    as JSON than through the typed classes.)
    """
    return dict(_FLUSH_SPANS_AT_ONCE)
