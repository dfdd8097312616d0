"""Keeps one local-gateway service running, as a Deployment would: restarts and rolling restarts.

Ownership and lifecycle: a `Supervised` owns the current `ChildProcess` of one service (the BBR,
the EPP or the simulator) and, during a rolling restart, the old one while it drains. `start()`
spawns the first process in the first slot and waits until `ready` says it serves; `watch()` (a
task of the gateway's) then polls the process every 0.1 s:

* **an unexpected exit** (a crash, `kill -9`) is logged with its status and the restart count, and
  the service is started again in the same slot after a back-off: 0.5 s, doubling to 10 s, back to
  0.5 s once a process stayed up 10 s (Kubernetes' CrashLoopBackOff, shortened for a laptop).
  Envoy reconnects by itself: its health checks see the host come back (`_envoy_slots`).
* **a rolling restart** (`roll()`, `igw-local restart epp|bbr`) is a Deployment's rolling update
  with one surge pod: the new process starts in the other slot; once it is ready (gRPC health
  SERVING and Envoy's health check passed) it becomes the current process, then the old one gets
  SIGTERM: readiness NOT_SERVING at once, new streams still taken for its `--shutdown-delay`
  (Envoy stops sending them within a check interval), then new streams refused and the open ones
  finished within `--grace-period`; it must exit 0. No request fails, no stream is cut.

Why a shutdown delay rather than refusing new streams at once: Envoy picks an ext_proc host per
stream, and a stream refused by a process that is already draining fails its request (the
filter has no retry). Measured on the 2-core machine (make run's lean mode and the compatible
mode, 8 clients, half streaming): Envoy marked the old host unhealthy 0.02-0.5 s after SIGTERM
(a NOT_SERVING answer counts at once), inside the 3 s delay; a rolling restart took 6-9 s (the
new process's start-up, the delay, the drain) and 500-1,000 requests ran through each with none
failed; after `kill -9` the service served again, Envoy's check passed, within about 3 s.

Every spawn happens on the event loop's thread: `PR_SET_PDEATHSIG` follows the forking thread,
so a child forked from a worker thread would get SIGTERM when that thread ends. Restarts and
rolling restarts of one service are serialized by a lock. `stop()` ends the watch first, so the
processes it then stops are not restarted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from igw.e2e.processes import ChildProcess

__all__ = ["BACKOFF_MAX_S", "BACKOFF_START_S", "STABLE_AFTER_S", "Slot", "Supervised"]

_log = structlog.get_logger("igw-local")

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 10.0
STABLE_AFTER_S = 10.0
"""A process that stayed up this long resets the back-off."""
_POLL_S = 0.1


@dataclasses.dataclass(frozen=True, slots=True)
class Slot:
    """Where one process of a service listens (a pod's ports)."""

    name: str
    grpc: int
    health: int
    metrics: int


Ready = Callable[[ChildProcess, Slot], Awaitable[None]]
"""Returns once the process serves in its slot; raises if it exits or never does."""


class Supervised:
    """One service kept running; see the module docstring."""

    def __init__(
        self,
        name: str,
        slots: Sequence[Slot],
        make: Callable[[Slot], ChildProcess],
        ready: Ready,
        *,
        drain_timeout_s: float = 60.0,
    ) -> None:
        """`make` builds (does not start) the process for a slot; `drain_timeout_s` bounds the
        wait for a draining process before it is killed."""
        self.name = name
        self.slots = tuple(slots)
        self.slot = self.slots[0]
        self.make = make
        self._ready = ready
        self._drain_timeout_s = drain_timeout_s
        self.child: ChildProcess | None = None
        self.restarts = 0
        self.serving = False
        """The current process passed `ready` and has not exited since."""
        self.started_at = 0.0
        self._backoff_s = BACKOFF_START_S
        self._lock = asyncio.Lock()
        self._stopping = False

    def spawn(self) -> None:
        """Start the first process in the first slot (see `start`; split for parallel starts)."""
        self.child = self._launch(self.slot)

    async def wait_ready(self) -> None:
        if self.child is None:
            raise RuntimeError(f"{self.name}: spawn() first")
        await self._ready(self.child, self.slot)
        self.serving = True

    async def start(self) -> None:
        self.spawn()
        await self.wait_ready()

    def _launch(self, slot: Slot) -> ChildProcess:
        child = self.make(slot)
        child.spawn()
        self.started_at = time.monotonic()
        return child

    @property
    def pid(self) -> int | None:
        process = self.child.process if self.child else None
        return process.pid if process else None

    async def watch(self) -> None:
        """Restart the service whenever its current process exits (runs until cancelled)."""
        while not self._stopping:
            await asyncio.sleep(_POLL_S)
            child = self.child
            process = child.process if child else None
            if process is None or process.poll() is None or self._lock.locked():
                continue
            async with self._lock:
                if child is self.child and not self._stopping:
                    await self._restart(process.returncode)

    async def _restart(self, status: int) -> None:
        self.serving = False
        uptime = time.monotonic() - self.started_at
        if uptime >= STABLE_AFTER_S:
            self._backoff_s = BACKOFF_START_S
        delay = self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, BACKOFF_MAX_S)
        self.restarts += 1
        _log.warning(
            f"{self.name} exited unexpectedly; restarting",
            status=_describe(status), restart=self.restarts, in_s=delay, uptime_s=round(uptime, 1),
        )  # fmt: skip
        await asyncio.sleep(delay)
        self.child = self._launch(self.slot)
        try:
            await self._ready(self.child, self.slot)
            self.serving = True
        except (RuntimeError, TimeoutError) as e:
            # Stopped if it still runs (never ready): the next poll sees the exit and retries.
            _log.warning(f"{self.name} did not come back", error=str(e).splitlines()[0])
            await asyncio.to_thread(self.child.stop, 5.0)
            return
        _log.info(f"{self.name} is back", pid=self.pid, slot=self.slot.name, restart=self.restarts)

    async def roll(self) -> str:
        """Rolling restart (module docstring); returns what happened, raises if it failed."""
        if len(self.slots) < 2:
            raise RuntimeError(f"{self.name} has a single slot: it can only be restarted")
        async with self._lock:
            old, old_slot = self.child, self.slot
            slot = next(s for s in self.slots if s != old_slot)
            new = self.make(slot)
            new.spawn()
            try:
                await self._ready(new, slot)
            except (RuntimeError, TimeoutError) as e:
                await asyncio.to_thread(new.stop, 5.0)
                raise RuntimeError(f"the new {self.name} did not become ready: {e}") from None
            self.child, self.slot, self.started_at = new, slot, time.monotonic()
            _log.info(f"new {self.name} ready; draining the old one", slot=slot.name)
            status = await self._drain(old)
        pid = new.process.pid if new.process else None
        done = f"{self.name}: pid {pid} serves in slot {slot.name} (:{slot.grpc})"
        if status != 0:
            raise RuntimeError(f"{done}; the old process ended with {_describe(status)}")
        return f"{done}; the old one drained and exited 0"

    async def _drain(self, child: ChildProcess | None) -> int:
        """SIGTERM `child`, wait for its graceful exit (killed after `drain_timeout_s`)."""
        process = child.process if child else None
        if process is None or process.poll() is not None:
            return 0 if process is None else process.returncode
        process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(process.wait, self._drain_timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            return await asyncio.to_thread(process.wait)

    async def stop(self) -> None:
        """Stop watching, then stop the process (SIGTERM, SIGKILL after the drain timeout)."""
        self._stopping = True
        async with self._lock:
            if self.child is not None:
                await asyncio.to_thread(self.child.stop, self._drain_timeout_s)

    def status(self) -> str:
        """One line for `igw-local status`."""
        process = self.child.process if self.child else None
        running = process is not None and process.poll() is None
        state = "serving" if running and self.serving else "starting" if running else "down"
        uptime = time.monotonic() - self.started_at if running else 0.0
        return (
            f"{self.name:8} {state:8} pid {self.pid}  "
            f"slot {self.slot.name} (:{self.slot.grpc})  "
            f"up {uptime:.0f}s  restarts {self.restarts}"
        )


def _describe(status: int) -> str:
    """`-9` as `killed by SIGKILL`, other statuses as `status N`."""
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"status {status}"
