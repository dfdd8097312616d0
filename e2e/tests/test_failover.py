"""`igw.e2e.failover`: what each failure mode changes in the local gateway's Envoy config, and
`igw-local run --failure-mode`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from igw.common.testing.envoy_config import (
    ExtProcFilter,
    HeaderRoute,
    LuaFilter,
    OriginalDstCluster,
)
from igw.e2e import cli, failover, pool
from igw.e2e.gateway import GatewayPorts, LocalGateway

FILTERS: list[ExtProcFilter | LuaFilter] = [
    ExtProcFilter("bbr", 1),
    LuaFilter("hint", "-- lua"),
    ExtProcFilter("epp", 2),
]
ROUTES = [HeaderRoute("x-gateway-model-name", "m", "pool")]


def _clusters(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in config["static_resources"]["clusters"]}


def test_fail_close_changes_nothing() -> None:
    cluster = OriginalDstCluster("pool")
    got = failover.apply("FailClose", FILTERS, ROUTES, cluster, first_port=8000, model_header="h")
    assert got == (FILTERS, ROUTES, cluster)


def test_fail_open_opens_both_filters_buffered_and_falls_back_to_every_rank() -> None:
    filters, routes, cluster = failover.apply(
        "FailOpen", FILTERS, ROUTES, OriginalDstCluster("pool"), first_port=8000, model_header="h"
    )
    procs = [f for f in filters if isinstance(f, ExtProcFilter)]
    assert [(f.failure_mode, f.request_body_mode) for f in procs] == [("FailOpen", "BUFFERED")] * 2
    assert filters[1] == FILTERS[1]  # Lua untouched, order kept
    # A request the BBR named no model for still reaches the pool.
    assert routes == [*ROUTES, HeaderRoute("h", None, "pool")]
    assert cluster.fallback_endpoints == (
        ("127.0.0.1", 8000), ("127.0.0.1", 8001), ("127.0.0.1", 8002), ("127.0.0.2", 8003),
    )  # fmt: skip
    assert len(cluster.fallback_endpoints) == pool.SIM_PORTS


def test_the_gateway_renders_its_failure_mode(tmp_path: Path) -> None:
    ports = GatewayPorts()
    closed = _clusters(LocalGateway(ports, tmp_path).envoy_config())
    opened = _clusters(LocalGateway(ports, tmp_path, failure_mode="FailOpen").envoy_config())
    assert "pool_fallback" not in closed
    assert "pool_fallback" in opened
    assert "outlier_detection" in opened["ext_proc_epp"]
    assert "outlier_detection" not in closed["ext_proc_epp"]


def test_a_bad_failure_mode_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", "--failure-mode", "FailSometimes"])
    assert exit_info.value.code == 2
    assert "argument --failure-mode: invalid choice: 'FailSometimes'" in capsys.readouterr().err
