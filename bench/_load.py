"""Closed-loop HTTP load, per-process CPU time, and what one measured round holds.

Load: `concurrency` workers share one aiohttp session (one keep-alive connection each, the
connector capped at `concurrency`) and POST the same 2 KB chat-completions body until `requests`
have been sent. The hot path only times the request, reads the answer and counts its status;
everything else happens between rounds.

CPU: utime + stime of a whole process (all its threads) from `/proc/PID/stat` fields 14 and 15,
in clock ticks (`SC_CLK_TCK`, 10 ms on Linux), the method of feasibility §2. A round's CPU per
request is the difference over the round divided by the requests sent. The machine's own
counters (`/proc/stat`) are read with them, so that a round disturbed by other work on the box,
or by the hypervisor (steal), shows as such.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import aiohttp

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_HEADERS = {"content-type": "application/json"}

_SYSTEM_PROMPT = (
    "You are a careful assistant for an engineering team. Answer precisely, cite the relevant "
    "configuration keys, and say so plainly when something is unknown. "
)
_QUESTION = (
    "Our gateway routes chat completions to a pool of model servers. Explain how the body-based "
    "router picks the model header, what happens to LoRA adapters, and which metrics to watch "
    "when latency rises under load. "
)


def chat_body(size: int = 2048) -> bytes:
    """A realistic OpenAI chat-completions request of about `size` bytes, with a `model`."""
    messages = [
        {"role": "system", "content": _SYSTEM_PROMPT},
        {"role": "user", "content": ""},
    ]
    request = {
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "messages": messages,
        "max_tokens": 256,
        "temperature": 0.7,
        "stream": False,
    }
    padding = max(size - len(json.dumps(request)), 0)
    messages[1]["content"] = (_QUESTION * (padding // len(_QUESTION) + 1))[:padding]
    return json.dumps(request).encode()


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


def new_session(concurrency: int) -> aiohttp.ClientSession:
    """The one session every round uses (create it inside the running event loop)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=30),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
    )


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    seconds: float
    latencies_s: tuple[float, ...]
    statuses: dict[int, int]
    """HTTP status -> count."""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def run_load(
    session: aiohttp.ClientSession, url: str, body: bytes, *, requests: int, concurrency: int
) -> LoadResult:
    """Send `requests` POSTs to `url`, `concurrency` at a time; raises on a transport error."""
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            async with session.post(url, data=body, headers=_HEADERS) as response:
                await response.read()
            latencies.append(time.perf_counter() - start)
            statuses[response.status] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    return LoadResult(requests, seconds, tuple(latencies), dict(statuses))


@dataclass(frozen=True, slots=True)
class Round:
    """One measured round: the load sent to one component's listener and the CPU it cost."""

    component: str
    load: LoadResult
    before: CpuSnapshot
    after: CpuSnapshot

    def cpu_ms_per_request(self, process: str) -> float:
        """`process`'s CPU per request over the round (`echo`, `bbr`, `envoy` or `client`)."""
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
