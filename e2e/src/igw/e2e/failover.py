"""The local gateway's failure mode (`igw-local run --failure-mode`): what Envoy does when the
BBR or the EPP is gone.

* FailClose (the default, as upstream's InferencePool): a request whose processor fails gets
  Envoy's 500 (`ext_proc_error_gRPC_error_14{...}` in the access log).
* FailOpen: both filters fail open (`ExtProcFilter.failure_mode`: health-checked processors,
  ejected at their first refused connection). A request the EPP did not pick for goes to the
  pool by Envoy's round robin (the pool's fallback endpoints); one the BBR did not name a model
  for is routed by the model header it carried, or, without one, to the pool. Both filters take
  request bodies BUFFERED here instead of FULL_DUPLEX_STREAMED: Envoy then keeps the body, so a
  request the processor was handling when it died goes on as well (in full-duplex mode Envoy has
  handed the body over and can only fail it: 4 of 852 requests in flight under 8 clients failed
  when the EPP was SIGKILLed, against none buffered). The cost: a request body is capped by
  Envoy's 1 MiB buffer (413 above it) and travels to each processor in one message.

During an outage FailOpen loses what only the EPP does: prefix- and load-aware picks, model
rewrites (the client's model name goes to the pool unchanged), flow control, adapter-aware
candidates; and what only the BBR does: base-model routing for adapters and `GET /v1/models`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

import yaml

from igw.common.testing.envoy_config import (
    ExtProcFilter,
    HeaderRoute,
    LuaFilter,
    OriginalDstCluster,
)
from igw.e2e import pool

__all__ = ["FAILURE_MODES", "FailureMode", "apply"]

FailureMode = Literal["FailOpen", "FailClose"]
FAILURE_MODES: tuple[FailureMode, ...] = ("FailClose", "FailOpen")


def apply(
    mode: FailureMode,
    filters: Sequence[ExtProcFilter | LuaFilter],
    routes: Sequence[HeaderRoute],
    cluster: OriginalDstCluster,
    *,
    first_port: int,
    model_header: str,
) -> tuple[list[ExtProcFilter | LuaFilter], list[HeaderRoute], OriginalDstCluster]:
    """The gateway's filters, routes and pool cluster in failure `mode` (module docstring)."""
    if mode == "FailClose":
        return list(filters), list(routes), cluster
    opened = [
        dataclasses.replace(
            f, failure_mode="FailOpen", request_body_mode="BUFFERED", request_trailer_mode="SKIP"
        )
        if isinstance(f, ExtProcFilter)
        else f
        for f in filters
    ]
    unnamed = HeaderRoute(model_header, None, cluster.name)
    fallback = dataclasses.replace(cluster, fallback_endpoints=pool_addresses(first_port))
    return opened, [*routes, unnamed], fallback


def pool_addresses(first_port: int) -> tuple[tuple[str, int], ...]:
    """Every rank of the pool as (ip, port), as the EPP's endpoints file lists them."""
    document = yaml.safe_load(pool.endpoints_yaml(first_port))
    return tuple(
        (str(entry["address"]), int(port))
        for entry in document["endpoints"]
        for port in entry["ports"]
    )
