"""igw.e2e.supervisor with stand-in children: back-off on crash loops, refusals, status lines."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from igw.e2e import supervisor
from igw.e2e.processes import ChildProcess
from igw.e2e.supervisor import Slot, Supervised

pytestmark = pytest.mark.asyncio

SLOT = Slot("a", 1, 2, 3)


def crashing(tmp_path: Path) -> Supervised:
    """A service whose process exits with status 3 as soon as it started."""

    def make(_slot: Slot) -> ChildProcess:
        argv = [sys.executable, "-c", "raise SystemExit(3)"]
        return ChildProcess("crasher", argv, tmp_path / "crasher.log")

    async def ready(_child: ChildProcess, _slot: Slot) -> None:
        return None

    return Supervised("crasher", [SLOT], make, ready, drain_timeout_s=5)


async def test_a_crash_loop_is_restarted_with_doubling_back_off(tmp_path: Path) -> None:
    unit = crashing(tmp_path)
    await unit.start()
    began = time.monotonic()
    watch = asyncio.create_task(unit.watch())
    try:
        for _ in range(1200):  # 60 s
            if unit.restarts >= 3:
                break
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - began
    finally:
        watch.cancel()
        await unit.stop()
    # The third restart is counted once the back-offs before the first two (0.5 s, then 1 s)
    # have passed; a lower bound only, since a busy machine may take longer.
    start = supervisor.BACKOFF_START_S
    assert unit.restarts >= 3
    assert elapsed >= start + 2 * start
    assert "restarts 3" in unit.status()


async def test_a_single_slot_service_has_no_rolling_restart(tmp_path: Path) -> None:
    unit = crashing(tmp_path)
    with pytest.raises(RuntimeError, match="single slot"):
        await unit.roll()
