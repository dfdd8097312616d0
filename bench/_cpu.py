"""Per-process CPU time, the machine's own counters, and what one measured round holds.

CPU: utime + stime of a whole process (all its threads) from `/proc/PID/stat` fields 14 and 15,
in clock ticks (`SC_CLK_TCK`, 10 ms on Linux), the method of feasibility §2. A round's CPU per
request is the difference over the round divided by the requests sent. The machine's own
counters (`/proc/stat`) are read with them, so that a round disturbed by other work on the box,
or by the hypervisor (steal), shows as such.

Paced rounds: two servers compared at full speed each run at their own rate, and CPU per request
falls as the rate rises (gRPC and Envoy handle more messages per wake-up), so the slower one also
pays for batching less (`bench/results/epp_request_cost.md`, "The rate effect"). The CPU
benchmarks therefore also run every listener at one rate, `paced_rate` (`PACED_SHARE` of the
slower listener's median full-speed rate), and keep both sets of rounds (`LoadRounds`).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench import _load
from bench._load import LoadResult

__all__ = [
    "PACED_SHARE",
    "CpuSnapshot",
    "LoadRounds",
    "Round",
    "chat_round",
    "cpu_seconds",
    "paced_rate",
]

PACED_SHARE = 0.8
"""Paced rounds run at this share of the slower listener's median full-speed rate."""
SETTLE_S = 0.1
"""Waited after the last answer before the closing snapshot: the processes' last bits of work."""

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process `pid` has used so far, in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields after its closing ")" do not.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _TICKS_PER_S


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    """CPU seconds used so far by each process, and by the whole machine (all cores)."""

    at: float
    processes: dict[str, float]
    machine_busy: float
    """user + nice + system + irq + softirq of /proc/stat: everything but idle and steal."""
    steal: float
    """Time the hypervisor ran something else while this machine wanted a core."""

    @classmethod
    def take(cls, pids: Mapping[str, int]) -> CpuSnapshot:
        processes = {name: cpu_seconds(pid) for name, pid in pids.items()}
        line = Path("/proc/stat").read_text().split("\n", 1)[0]
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, line.split()[1:9])
        busy = (user + nice + system + irq + softirq) / _TICKS_PER_S
        return cls(time.perf_counter(), processes, busy, steal / _TICKS_PER_S)


@dataclass(frozen=True, slots=True)
class Round:
    """One measured round: the load sent to one component's listener and the CPU it cost."""

    component: str
    load: LoadResult
    before: CpuSnapshot
    after: CpuSnapshot

    def cpu_ms_per_request(self, process: str) -> float:
        """`process`'s CPU per request over the round (`echo`, `bbr`, `envoy`, `client` ...)."""
        used = self.after.processes[process] - self.before.processes[process]
        return used * 1000 / self.load.requests

    @property
    def other_cores(self) -> float:
        """Cores kept busy by anything but the benchmark's processes: noise, if well above 0."""
        ours = sum(self.after.processes.values()) - sum(self.before.processes.values())
        busy = self.after.machine_busy - self.before.machine_busy
        return (busy - ours) / (self.after.at - self.before.at)

    @property
    def steal_cores(self) -> float:
        """Cores' worth of time the hypervisor withheld during the round: noise too."""
        return (self.after.steal - self.before.steal) / (self.after.at - self.before.at)


async def chat_round(
    component: str,
    session: aiohttp.ClientSession,
    url: str,
    pids: Mapping[str, int],
    *,
    requests: int,
    concurrency: int,
    body_bytes: int,
    rate: float | None = None,
) -> Round:
    """One round: `requests` POSTs of a `body_bytes` chat body to `url`, `concurrency` at a time
    (`_load.run_load`, paced at `rate` per second if given), with the CPU of `pids` and of this
    client process taken around it."""
    pids = {**pids, "client": os.getpid()}
    before = CpuSnapshot.take(pids)
    body = _load.chat_body(body_bytes)
    load = await _load.run_load(
        session, url, body, requests=requests, concurrency=concurrency, rate=rate
    )
    await asyncio.sleep(SETTLE_S)
    return Round(component, load, before, CpuSnapshot.take(pids))


@dataclass(frozen=True, slots=True)
class LoadRounds:
    """A benchmark's rounds: at full speed, then every listener paced at `rate` per second."""

    saturated: list[Round]
    paced: list[Round]
    rate: float


def paced_rate(saturated: Sequence[Round], components: Iterable[str]) -> float:
    """`PACED_SHARE` of the slowest of `components`' median full-speed rates."""
    return PACED_SHARE * min(
        statistics.median(r.load.rps for r in saturated if r.component == component)
        for component in components
    )
