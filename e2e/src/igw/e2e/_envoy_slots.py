"""Two health-checked slots per ext_proc cluster, so a service can be replaced under traffic.

`igw.common.testing.envoy_config` gives each ext_proc filter a one-host STATIC cluster. The local
gateway rewrites it into two hosts (slot a and slot b: the same service on two ports, as two pods
behind one Service) with Envoy's active gRPC health checks on the ext_proc port itself (the
services serve gRPC health there with `--health-checking`). A host that answers NOT_SERVING, or
does not answer, gets no new ext_proc streams; the streams it has keep running (Envoy does not
close connections on a health failure unless told to). Only one slot is filled at a time except
during a rolling restart, so the empty slot is simply an unhealthy host.

Why these numbers: a check every 0.5 s (also while the cluster has seen no traffic yet, Envoy's
`no_traffic_interval` is 60 s by default) means a draining process is out of rotation within about
0.5 s of turning NOT_SERVING, well inside the services' 3 s `--shutdown-delay` the gateway passes;
two failed checks in a row (a NOT_SERVING answer marks the host at once) keep one slow answer on a
busy machine from taking a healthy process out of rotation.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import betterproto2
from envoy_data_plane.envoy.config.core.v3 import HealthCheck, HealthCheckGrpcHealthCheck

__all__ = ["CHECK_INTERVAL_S", "health_checked_slots", "host_health"]

CHECK_INTERVAL_S = 0.5
_CHECK_TIMEOUT_S = 3.0


def _health_check() -> dict[str, Any]:
    interval = datetime.timedelta(seconds=CHECK_INTERVAL_S)
    check = HealthCheck(
        timeout=datetime.timedelta(seconds=_CHECK_TIMEOUT_S),
        interval=interval,
        no_traffic_interval=interval,
        unhealthy_interval=interval,
        unhealthy_threshold=2,
        healthy_threshold=1,
        grpc_health_check=HealthCheckGrpcHealthCheck(service_name=""),
    )
    result: dict[str, Any] = check.to_dict(casing=betterproto2.Casing.SNAKE)
    return result


def health_checked_slots(config: dict[str, Any], cluster: str, ports: Sequence[int]) -> None:
    """Make `cluster` in Envoy bootstrap `config` list `ports` on its host, health-checked."""
    [spec] = [c for c in config["static_resources"]["clusters"] if c["name"] == cluster]
    [locality] = spec["load_assignment"]["endpoints"]
    [template] = locality["lb_endpoints"]
    host = template["endpoint"]["address"]["socket_address"]["address"]
    locality["lb_endpoints"] = [
        {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}
        for port in ports
    ]
    spec["health_checks"] = [_health_check()]


def host_health(clusters_text: str, cluster: str) -> dict[int, bool]:
    """Port -> healthy, from Envoy admin's `/clusters` text for `cluster`'s hosts."""
    health: dict[int, bool] = {}
    prefix = f"{cluster}::"
    for line in clusters_text.splitlines():
        if line.startswith(prefix) and "::health_flags::" in line:
            address, _, flags = line[len(prefix) :].partition("::health_flags::")
            health[int(address.rsplit(":", 1)[1])] = flags.strip() == "healthy"
    return health
