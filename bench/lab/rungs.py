"""One router's run over a plan: its load steps ("rungs") in order, on one running stack.

Each rung is the plan's requests for it, streamed open loop at their arrival times through
`bench._load.open_loop`, then drained. The simulators' counters (the fleet's `/state`) and every
process's CPU are read at the rung's edges; a poller reads the pods' queues every 0.5 s for the
per-pod load plot. Progress goes to stdout every 5 s, and each rung's headline when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench import _load
from bench._cpu import CpuSnapshot
from bench.lab import report
from bench.lab.outcome import Outcome
from bench.lab.plan import Plan
from bench.lab.routers import Router, Stack
from bench.lab.settings import Settings

__all__ = ["run_router"]

_POLL_S = 0.5
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10)


async def _get_state(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with session.get(url) as answer:
        body = await answer.json()
    pods: list[dict[str, Any]] = body["pods"]
    return pods


def _machine_share(before: CpuSnapshot, after: CpuSnapshot) -> float:
    """The share of all the machine's cores busy between the two snapshots."""
    return (after.machine_busy - before.machine_busy) / (
        (after.at - before.at) * (os.cpu_count() or 1)
    )


def _cpu_shares(before: CpuSnapshot, after: CpuSnapshot, pids: Sequence[str]) -> dict[str, float]:
    """The machine's busy share, steal and each process's cores over a rung, and its length."""
    wall = after.at - before.at
    return {
        "machine": _machine_share(before, after),
        "steal": (after.steal - before.steal) / wall,
        "wall": wall,
        **{name: (after.processes[name] - before.processes[name]) / wall for name in pids},
    }


def _progress(
    run_start: float, rung_start: float, before: CpuSnapshot
) -> Callable[[Sequence[_load.Streamed]], None]:
    """A printer of the rung's answers so far, for `open_loop`'s progress reports."""

    def show(answers: Sequence[_load.Streamed]) -> None:
        done = sum(1 for a in answers if a.ok or a.error)
        failed = sum(1 for a in answers if a.error)
        busy = _machine_share(before, CpuSnapshot.take({}))
        elapsed = time.perf_counter() - run_start - rung_start
        print(
            f"    t={elapsed:5.1f}s sent {len(answers)} done {done} "
            f"failed {failed} in flight {len(answers) - done} "
            f"machine CPU {busy * 100:.0f} %",
            flush=True,
        )

    return show


def _print_result(figures: dict[str, Any], cpu: dict[str, float]) -> None:
    f = figures
    print(
        f"    -> TTFT p90 {report.as_ms(f['ttft_p90'])} ms, ITL p50 "
        f"{report.as_ms(f['itl_p50'])} ms, hit rate {report.as_pct(f['hit_rate'])}, "
        f"failed {f['failed']}/{f['sent']}, machine CPU {cpu['machine'] * 100:.0f} %",
        flush=True,
    )


@dataclass(slots=True)
class _RouterRun:
    """A router's run in progress: where it sends, and what it has recorded so far."""

    plan: Plan
    router: Router
    stack: Stack
    settings: Settings
    label: str
    session: aiohttp.ClientSession
    control: aiohttp.ClientSession
    """For the fleet's `/state`, apart from the load's connections."""
    pids: dict[str, int]
    start: float = field(default_factory=time.perf_counter)
    rows: list[dict[str, Any]] = field(default_factory=list)
    samples: list[dict[str, Any]] = field(default_factory=list)
    boundaries: list[float] = field(default_factory=list)
    """When each rung started, in seconds since the run's start."""

    async def poll(self) -> None:
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                pods = await _get_state(self.control, self.stack.state_url)
                self.samples.append({"t": time.perf_counter() - self.start, "pods": pods})
            await asyncio.sleep(_POLL_S)

    async def rung(self, rung: int) -> None:
        plan, settings = self.plan, self.settings
        rate, (lo, hi), factor = plan.rates[rung], plan.slices[rung], settings.factors[rung]
        before_counters = await _get_state(self.control, self.stack.state_url)
        before_cpu = CpuSnapshot.take(self.pids)
        rung_start = time.perf_counter() - self.start
        self.boundaries.append(rung_start)
        print(
            f"  {self.label} step {rung + 1}/{len(plan.rates)}: load {factor:.2f} = "
            f"{rate:.1f} req/s, {hi - lo} requests",
            flush=True,
        )
        requests = plan.requests[lo:hi]
        answers = await _load.open_loop(
            self.session,
            self.stack.url,
            [request.body for request in requests],
            plan.arrivals[rung],
            drain_s=settings.drain,
            on_progress=_progress(self.start, rung_start, before_cpu),
        )
        after_cpu = CpuSnapshot.take(self.pids)
        after_counters = await _get_state(self.control, self.stack.state_url)
        outcomes = [
            Outcome(index, rung, request.group, answer.released - self.start, answer)
            for index, request, answer in zip(range(lo, hi), requests, answers, strict=True)
        ]
        figures = report.rung_figures(outcomes, before_counters, after_counters, rung_start)
        cpu = _cpu_shares(before_cpu, after_cpu, list(self.pids))
        self.rows.append(
            {
                "workload": plan.workload.name,
                "router": self.router.name,
                "rung": rung,
                "factor": factor,
                "offered_rps": rate,
                "figures": figures,
                "cpu": cpu,
                "outcomes": [outcome.row() for outcome in outcomes],
            }
        )
        _print_result(figures, cpu)


async def run_router(
    plan: Plan, router: Router, stack: Stack, settings: Settings, label: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every rung of `plan` through `stack`; the rows of the report and the pods' timeline."""
    pids = {**stack.pids(), "client": os.getpid()}
    async with (
        _load.new_session(0, _TIMEOUT) as session,
        aiohttp.ClientSession() as control,
    ):
        run = _RouterRun(plan, router, stack, settings, label, session, control, pids)
        poller = asyncio.create_task(run.poll())
        try:
            for rung in range(len(plan.rates)):
                await run.rung(rung)
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
    return run.rows, {"samples": run.samples, "rungs": run.boundaries}
