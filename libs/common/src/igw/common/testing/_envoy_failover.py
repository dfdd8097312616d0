"""The Envoy pieces behind `ExtProcFilter(failure_mode="FailOpen")` and a pool's fallback cluster.

Private to `envoy_config`, which explains the design; what each piece is for, measured on Envoy
1.40 (reference: issue 13, item 1):

* `failure_mode_allow: true` alone does not fail open when the processor is down. Envoy 1.40
  accepts it with FULL_DUPLEX_STREAMED bodies (1.35 refused it; 1.36 allowed it back), but it
  fails open only until the first body chunk went to the processor, and in full-duplex mode
  Envoy sends the body before the connection to a dead processor has even failed: every request
  still got `500 ext_proc_error_gRPC_error_14` (connection refused). So the processor's cluster
  has to know the processor is gone *before* a stream starts: then `start()` fails at once and
  the filter continues the request. `health_and_ejection` does that: active gRPC health checks
  on the processor's own port (the services' `--health-checking`), outlier detection that ejects
  the host at its first refused connection, and no panic threshold (Envoy's default 50 % sends
  traffic to an all-unhealthy cluster anyway).
* A request whose EPP failed open carries no `x-gateway-destination-endpoint`, which an
  ORIGINAL_DST cluster needs (`503 no healthy upstream` without it). `fallback_cluster` lists
  the pool's endpoints for Envoy's own round robin, and the routes to the pool are split: header
  present (the EPP picked) -> ORIGINAL_DST, absent -> fallback.
* `processor_failure_reply`: Envoy answers a failed processor with an empty 500 (its reason only
  in the access log); the client gets the reason in the body too.
* `strip_header_filter` removes a client's own destination header before any processor runs:
  with the EPP down it would otherwise send the request wherever the client said.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from envoy_data_plane.envoy.config.accesslog.v3 import AccessLogFilter, ExtensionFilter
from envoy_data_plane.envoy.config.cluster.v3 import (
    Cluster,
    ClusterCommonLbConfig,
    OutlierDetection,
)
from envoy_data_plane.envoy.config.core.v3 import (
    DataSource,
    HealthCheck,
    HealthCheckGrpcHealthCheck,
    SubstitutionFormatString,
)
from envoy_data_plane.envoy.extensions.access_loggers.filters.cel.v3 import ExpressionFilter
from envoy_data_plane.envoy.extensions.filters.network.http_connection_manager.v3 import (
    HttpFilter,
    LocalReplyConfig,
    ResponseMapper,
)
from envoy_data_plane.envoy.type.v3 import Percent

from igw.common.testing import _envoy_clusters, _envoy_lua

HEALTH_CHECK_INTERVAL_S = 0.5
"""A processor that died is out of rotation within about this long (sooner: its first refused
connection ejects it); one that came back is in again after one passing check."""
_HEALTH_CHECK_TIMEOUT_S = 3.0
_EJECTION_S = 1.0


def health_and_ejection(cluster: Cluster) -> None:
    """Make a processor's cluster drop a dead processor before any stream starts (docstring)."""
    interval = datetime.timedelta(seconds=HEALTH_CHECK_INTERVAL_S)
    cluster.health_checks = [
        HealthCheck(
            timeout=datetime.timedelta(seconds=_HEALTH_CHECK_TIMEOUT_S),
            interval=interval,
            no_traffic_interval=interval,
            unhealthy_interval=interval,
            # A refused connection or NOT_SERVING marks it at once; a slow answer on a busy
            # machine needs two in a row.
            unhealthy_threshold=2,
            healthy_threshold=1,
            grpc_health_check=HealthCheckGrpcHealthCheck(service_name=""),
        )
    ]
    cluster.outlier_detection = OutlierDetection(
        split_external_local_origin_errors=True,
        consecutive_local_origin_failure=1,
        enforcing_consecutive_local_origin_failure=100,
        # Only local-origin failures (refused, reset, timed out) eject: a processor's gRPC errors
        # travel in HTTP 200 answers, which the 5xx detectors never count.
        interval=interval,
        base_ejection_time=datetime.timedelta(seconds=_EJECTION_S),
        max_ejection_percent=100,
    )
    cluster.common_lb_config = ClusterCommonLbConfig(healthy_panic_threshold=Percent(value=0.0))


def fallback_cluster(name: str, endpoints: Sequence[tuple[str, int]]) -> Cluster:
    """The pool's endpoints as a plain round-robin cluster, for requests no EPP picked for."""
    return _envoy_clusters.static_cluster(name, endpoints)


def strip_header_filter(header: str) -> HttpFilter:
    """A filter removing the request header `header` as the client sent it.

    Envoy picked the route before any filter ran, on the client's header; a request no processor
    then re-routes (failed open) would keep that route, so the route cache is cleared too (the
    header-mutation filter cannot, hence Lua).
    """
    source = f"""
function envoy_on_request(handle)
  if handle:headers():get("{header}") ~= nil then
    handle:headers():remove("{header}")
    handle:clearRouteCache()
  end
end
"""
    return _envoy_lua.lua_filter(f"strip-{header}", source)


PROCESSOR_FAILED_BODY = "gateway: an ext_proc processor failed: "
"""How the body of Envoy's answer to a failed processor starts; Envoy's reason follows."""


def processor_failure_reply() -> LocalReplyConfig:
    """Envoy's own replies to a failed processor (its `ext_proc_error...` details) get a body."""
    failed = ExpressionFilter(expression="response.code_details.startsWith('ext_proc_error')")
    body = SubstitutionFormatString(
        text_format_source=DataSource(
            inline_string=PROCESSOR_FAILED_BODY + "%RESPONSE_CODE_DETAILS%\n"
        )
    )
    mapper = ResponseMapper(
        filter=AccessLogFilter(
            extension_filter=ExtensionFilter(
                name="envoy.access_loggers.extension_filters.cel",
                typed_config=_envoy_clusters.pack(failed),
            )
        ),
        body_format_override=body,
    )
    return LocalReplyConfig(mappers=[mapper])
