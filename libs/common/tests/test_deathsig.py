"""igw.common.deathsig: a child started through the shim dies with its launcher, even on SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from igw.common import deathsig

LAUNCHER = """
import subprocess, sys, time
from igw.common import deathsig
child = subprocess.Popen(deathsig.wrap(["sleep", "60"]))
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) is dead for our purpose.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_the_child_dies_when_the_launcher_is_killed() -> None:
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdout=subprocess.PIPE, text=True)
    assert launcher.stdout is not None
    child = int(launcher.stdout.readline())
    launcher.stdout.close()
    deadline = time.monotonic() + 10
    while not _alive(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _alive(child)
    launcher.send_signal(signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(child)


def test_wrap_keeps_the_command_after_the_shim() -> None:
    wrapped = deathsig.wrap(["envoy", "-c", "x.json"])
    assert wrapped[-3:] == ["envoy", "-c", "x.json"]
    assert wrapped[3] == str(os.getpid())
