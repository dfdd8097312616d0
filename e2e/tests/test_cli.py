"""The `igw-local` commands as `make run` and `make load` run them, as real processes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from igw.common.testing import refused_port

pytestmark = pytest.mark.envoy

CLI = [sys.executable, "-m", "igw.e2e.cli"]


def _wait_for_banner(process: subprocess.Popen[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    seen = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if "Stop with Ctrl-C" in line:
            return "".join(seen)
    raise AssertionError("igw-local never printed its banner:\n" + "".join(seen))


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain `text` (our children name the workdir)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        if text in argv:
            found.append(argv)
    return found


def test_run_serves_load_shows_the_routing_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    workdir = tmp_path / "gw"
    process = subprocess.Popen(
        [*CLI, "run", "--free-ports", "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = _wait_for_banner(process, timeout_s=60)
        up = re.search(r"gateway is up at http://127\.0\.0\.1:(\d+)\n", banner)
        assert up is not None, banner
        port = int(up.group(1))
        assert '"stream": true' in banner
        assert "make load" in banner
        metrics = re.search(r"EPP metrics: +(\S+)", banner)
        assert metrics is not None
        report = _load(port, metrics.group(1))
        assert len(_processes_mentioning(str(workdir))) == 5  # igw-local, sim, EPP, BBR, Envoy
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert _processes_mentioning(str(workdir)) == []
    assert "24 answered 200" in report
    assert re.search(r"^sim-2 +food-review-1 +6 ", report, re.MULTILINE), report
    assert re.search(r"^3 +food-review-1 +sim-2 x6$", report, re.MULTILINE), report
    assert "inference_objective_request_total" in report
    assert re.search(r"^food-review-1 +food-review-1 +6 +6$", report, re.MULTILINE), report


def _load(port: int, metrics_url: str) -> str:
    result = subprocess.run(
        [*CLI, "load", "--port", str(port), "--metrics-url", metrics_url, "--requests", "24"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_load_says_so_when_no_gateway_runs() -> None:
    with refused_port() as port:
        result = subprocess.run(
            [*CLI, "load", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert "no gateway answers at http://127.0.0.1:" in result.stderr
    assert "make run" in result.stderr
    assert result.stdout == ""
