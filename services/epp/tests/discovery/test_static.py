"""Static discovery: the file format, start-up errors, and reloads that keep the last good list."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import structlog

from igw.epp.discovery.static import StaticDiscovery, StaticDiscoveryError, parse_endpoints_file
from igw.epp.endpoints import ENGINE_TYPE_LABEL, Endpoint

FILE = """\
endpoints:
  - name: sim-0
    address: 127.0.0.1
    port: 8000
    ranks: 2
  - name: sim-1
    address: 127.0.0.1
    ports: [8010]
    metricsPort: 9010
    engineType: sglang
    labels: {app: sim}
"""


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[Endpoint]] = []

    def reconcile(self, endpoints: Sequence[Endpoint]) -> None:
        self.calls.append(list(endpoints))


def test_each_port_becomes_a_rank_endpoint() -> None:
    endpoints = parse_endpoints_file(FILE, Path("e.yaml"))
    assert endpoints == [
        Endpoint("sim-0-rank-0", "127.0.0.1", 8000, pod="sim-0", rank=0),
        Endpoint("sim-0-rank-1", "127.0.0.1", 8001, pod="sim-0", rank=1),
        Endpoint("sim-1-rank-0", "127.0.0.1", 8010, pod="sim-1", rank=0, metrics_port=9010,
                 labels={"app": "sim", ENGINE_TYPE_LABEL: "sglang"}),
    ]  # fmt: skip


@pytest.mark.parametrize("text", ["", "endpoints: []\n", "endpoints:\n"])
def test_empty_file_means_no_endpoints(text: str) -> None:
    assert parse_endpoints_file(text, Path("e.yaml")) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("endpoints: [\n", r"e\.yaml:2: invalid YAML", id="yaml-syntax"),
        pytest.param("pods: []\n", r"e\.yaml:1: expected a mapping", id="wrong-top-level"),
        pytest.param("endpoints:\n- {name: a, address: h, port: 1}\n- {name: b, address: h}\n",
                     r"e\.yaml:3: endpoint 1 \(b\): give one of port", id="no-port"),
        pytest.param("endpoints:\n- {name: a, address: h, port: 1, weight: 2}\n",
                     r"e\.yaml:2: endpoint 0: unknown field\(s\) \['weight'\]", id="unknown-field"),
        pytest.param("endpoints:\n- {name: a, address: h, port: 70000}\n", "integers from 1",
                     id="port-range"),
        pytest.param("endpoints:\n- {name: a, address: h, ports: [1, 1]}\n", "listed twice",
                     id="duplicate-port"),
        pytest.param("endpoints:\n- {name: a, address: h, port: 1}\n"
                     "- {name: a, address: g, port: 2}\n",
                     r"e\.yaml:3: .*used twice", id="duplicate-name"),
        pytest.param("endpoints:\n- {name: a, address: h, port: 1, labels: {v: 1}}\n",
                     "quote values", id="non-string-label"),
        pytest.param("endpoints:\n- {name: a, address: h, ports: [1, 2], metricsPort: 9}\n",
                     "single port", id="metrics-port-with-ranks"),
        pytest.param("endpoints:\n- {name: a, port: 1}\n", "address", id="no-address"),
    ],
)  # fmt: skip
def test_broken_files_name_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(StaticDiscoveryError, match=message):
        parse_endpoints_file(text, Path("e.yaml"))


def test_load_at_startup_reconciles_or_raises(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    recorder = Recorder()
    with pytest.raises(StaticDiscoveryError, match="cannot read"):
        StaticDiscovery(path, recorder).load()
    path.write_text("endpoints: {}\n")
    with pytest.raises(StaticDiscoveryError, match=str(path)):
        StaticDiscovery(path, recorder).load()
    path.write_text(FILE)
    StaticDiscovery(path, recorder).load()
    assert [len(call) for call in recorder.calls] == [3]


async def until(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_edits_reload_and_broken_edits_keep_the_previous_list(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yaml"
    path.write_text(FILE)
    recorder = Recorder()
    discovery = StaticDiscovery(path, recorder, poll_interval_s=0.01)
    discovery.load()
    discovery.start()
    try:
        with structlog.testing.capture_logs() as logs:
            path.write_text("endpoints:\n- {name: x, address: h, port: 1}\n")
            await until(lambda: len(recorder.calls) == 2)
            assert [e.name for e in recorder.calls[-1]] == ["x-rank-0"]

            path.write_text("endpoints:\n- {name: x, address: h, port: nope}\n")
            await until(lambda: any(e["event"] == "epp.static_discovery.invalid" for e in logs))
            path.unlink()
            await until(lambda: any(e["event"] == "epp.static_discovery.unreadable" for e in logs))
            await asyncio.sleep(0.05)  # many polls: still one error per change
            path.write_text("endpoints: []\n")
            await until(lambda: len(recorder.calls) == 3)
        assert recorder.calls[-1] == []
        errors = [e["event"] for e in logs if e["log_level"] == "error"]
        assert errors == ["epp.static_discovery.invalid", "epp.static_discovery.unreadable"]
        assert "endpoints.yaml:2" in next(e["error"] for e in logs if "error" in e)
    finally:
        await discovery.stop()
