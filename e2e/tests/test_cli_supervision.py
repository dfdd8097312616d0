"""`make run` survives `kill -9` of the EPP or the BBR, and `igw-local restart` rolls one.

The gateway runs as `igw-local run` does under `make run` (a real process with its children);
the test finds the children's pids through `igw-local status`, as a user would, and waits on
conditions: the service is back (status), and a request through the gateway succeeds again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from igw.common.testing import refused_port
from igw.e2e import pool

pytestmark = pytest.mark.envoy

CLI = [sys.executable, "-m", "igw.e2e.cli"]


def _until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.2)


def _igw_local(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=120, check=False)


def _status(port: int) -> dict[str, tuple[str, int, int]]:
    """Service -> (state, pid, restarts), from `igw-local status`."""
    result = _igw_local("status", "--port", str(port))
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^igw-(\w+) +(\w+) +pid (\d+) .* restarts (\d+)$", result.stdout, re.M)
    return {name: (state, int(pid), int(n)) for name, state, pid, n in rows}


def _serves(port: int) -> bool:
    body = {"model": pool.BASE_MODEL, "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4}  # fmt: skip
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return False


# Three restarts, each a Python service starting up, plus the gateway itself: 70 s measured on a
# busy 2-core machine, so the suite's 120 s per-test bound is too tight here.
@pytest.mark.timeout(360)
def test_run_survives_kill_9_of_the_epp_and_the_bbr_and_restarts_them_on_demand(
    tmp_path: Path,
) -> None:
    log_path = tmp_path / "run.log"
    argv = [*CLI, "run", "--free-ports", "--workdir", str(tmp_path / "gw")]
    with log_path.open("w") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        _until(lambda: "Stop with Ctrl-C" in log_path.read_text(), "the banner", timeout_s=90)
        assert "igw-local restart epp" in log_path.read_text()
        up = re.search(r"gateway is up at http://127\.0\.0\.1:(\d+)\n", log_path.read_text())
        assert up is not None
        port = int(up.group(1))
        for service in ("epp", "bbr"):
            _, pid, restarts = _status(port)[service]
            os.kill(pid, signal.SIGKILL)

            def back(service: str = service, pid: int = pid, restarts: int = restarts) -> bool:
                state, new_pid, count = _status(port)[service]
                restarted = (state, count) == ("serving", restarts + 1) and new_pid != pid
                return restarted and _serves(port)

            _until(back, f"the {service} back after kill -9 and the gateway serving")
            assert re.search(
                rf"igw-{service} exited unexpectedly; restarting .*killed by SIGKILL",
                log_path.read_text(),
            )
        rolled = _igw_local("restart", "epp", "--port", str(port))
        assert rolled.returncode == 0, rolled.stderr
        assert "the old one drained and exited 0" in rolled.stdout
        assert _serves(port)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_restart_says_so_when_no_gateway_runs() -> None:
    with refused_port() as port:
        result = _igw_local("restart", "bbr", "--port", str(port))
    assert result.returncode == 1
    assert "is `igw-local run` running there?" in result.stderr
