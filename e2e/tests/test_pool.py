"""The local gateway's pool: the files describing it agree, and its ports fit together."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from igw.e2e import pool
from igw.e2e.gateway import GatewayPorts
from igw.epp.discovery.static import parse_endpoints_file
from igw.sim.config import build, read_yaml
from igw.sim.fleet import plan

PODS = {"sim-0", "sim-1-rank-0", "sim-1-rank-1", "sim-2"}


def test_free_ports_are_distinct_and_the_pool_consecutive() -> None:
    ports = GatewayPorts.free()
    singles = [ports.listen, ports.admin, ports.epp_grpc, ports.epp_health, ports.epp_metrics,
               ports.bbr_grpc, ports.bbr_health, ports.bbr_metrics]  # fmt: skip
    assert len(set(singles)) == len(singles)
    assert not set(singles) & set(ports.sim_ports)
    assert len(ports.sim_ports) == pool.SIM_PORTS
    ports.release()


def test_free_ports_are_held_for_our_servers_and_nobody_else() -> None:
    ports = GatewayPorts.free()
    again = GatewayPorts.free()  # a second gateway gets none of the first one's ports
    assert not {*_numbers(ports)} & {*_numbers(again)}
    for port in (ports.epp_grpc, ports.sim_first):
        with socket.socket() as stranger, pytest.raises(OSError, match="in use"):
            stranger.bind(("127.0.0.1", port))  # without SO_REUSEADDR
    with socket.socket() as server:  # servers set SO_REUSEADDR: ours bind beside the hold
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", ports.epp_grpc))
        server.listen()
        with socket.socket() as late:  # and then nobody else can
            late.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError, match="in use"):
                late.bind(("127.0.0.1", ports.epp_grpc))
    ports.release()
    again.release()


def _numbers(ports: GatewayPorts) -> list[int]:
    fields = [f.name for f in dataclasses.fields(ports) if f.name not in ("sim_first", "held")]
    return [getattr(ports, name) for name in fields] + list(ports.sim_ports)


def test_the_pool_files_agree(tmp_path: Path) -> None:
    """The EPP's endpoints are exactly the simulator's ranks, by name, address and port."""
    endpoints = parse_endpoints_file(pool.endpoints_yaml(8000), tmp_path / "endpoints.yaml")
    config_path = tmp_path / "sim.yaml"
    config_path.write_text(pool.sim_yaml(8000))
    ranks = plan(build({}, read_yaml(config_path), environ={}))
    assert [e.port for e in endpoints] == [r.settings.port for r in ranks]
    assert [e.name for e in endpoints] == [
        "sim-0-rank-0", "sim-1-rank-0", "sim-1-rank-1", "sim-2-rank-0",
    ]  # fmt: skip
    assert {r.settings.pod_name for r in ranks} == PODS
    assert [e.address for e in endpoints][-1] == pool.ADAPTER_POD_IP


def test_sim_options_apply_to_every_pod_and_keep_the_layout(tmp_path: Path) -> None:
    path = tmp_path / "options.yaml"
    path.write_text("max_num_seqs: 2\ntime-scale: 1\n")  # either spelling of a key
    options = pool.read_sim_options(path)
    config_path = tmp_path / "sim.yaml"
    config_path.write_text(pool.sim_yaml(8000, options))
    ranks = plan(build({}, read_yaml(config_path), environ={}))
    assert {r.settings.pod_name for r in ranks} == PODS
    assert [r.settings.port for r in ranks] == [8000, 8001, 8002, 8003]
    assert {r.engine.max_num_seqs for r in ranks} == {2}
    assert {r.engine.time_scale for r in ranks} == {1.0}
