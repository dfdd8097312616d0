"""`python -m bench.lab`: igw against round-robin, least-request and an omniscient router.

Method (repeated in every report):

* For each workload (`bench.lab.workloads`) one seeded request sequence is drawn, and one
  seeded set of Poisson arrival times per load step; every router gets exactly those.
* For each router (`bench.lab.routers`) a fresh stack is started: the fleet process (`--pods`
  `igw-sim` pods on the `llama-3.1-8b-h100` preset at `--time-scale`, plus the omniscient
  picker), the EPP if the router is igw, and one Envoy. Caches start cold for every router.
* The load steps ("rungs") run in order on that stack: `--factors` times the workload's nominal
  capacity (per pod, x pods x time scale; set so that the default 0.5 / 1 / 2 go from light
  load to past what a cache- or adapter-blind router sustains), each for
  `--duration` seconds of arrivals, then up to `--drain` seconds for the answers. The
  simulators' counters and every process's CPU are read at each rung's edges; the pods' queues
  every 0.5 s for the per-pod load plot. The rungs share the stack, so the first one includes
  the cold start and later ones run on the caches the router has built so far (as a gateway
  in service would); a router's top rung is its steady state under the highest load.
* Then the cost benchmarks (`bench.lab.cost`) unless `--no-cost`.

A time scale below 1 makes every simulated GPU that much slower (0.5: half speed), so the same
load factor needs fewer requests per second and the gateway processes, which share this
machine's cores with the fleet and the client, stay far from saturation; the CPU column shows
the whole machine's use during each rung so a saturated box is visible. Latencies are the wall
clock at the client: at time scale s, 1 s measured is s seconds on the real GPU.

Writes `<out>/report.md`, `<out>/results.json` and `<out>/<workload>-ttft.png`,
`<out>/<workload>-pods.png`. Exit 0 when every run completed (targets met or not), 1 when a
stack failed to start (after 3 tries) or its processes failed during a run, 130 on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import platform
import random
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from bench._load import CpuSnapshot
from bench.lab import checks, cost, report
from bench.lab.loadgen import Outcome, poisson_arrivals, run_rung
from bench.lab.routers import ROUTERS, Router, Stack
from bench.lab.settings import PRESET, REPO, Settings, parse_args
from bench.lab.workloads import MODEL, WORKLOADS, LabRequest, Workload

__all__ = ["main", "make_plan", "parse_args", "run_lab"]


def sim_yaml(workload: Workload, settings: Settings) -> str:
    """The fleet's `igw-sim --config`: one entry per pod, every port picked by the OS."""
    lines = [
        "# igw-sim --config written by bench.lab for one (workload, router) run",
        "host: 127.0.0.1",
        "port: 0",
        f"preset: {PRESET}",
        f"model: {MODEL}",
        f"time-scale: {settings.time_scale}",
        "log-format: console",
        "v: 1",
        "pods:",
    ]
    for i, extra in enumerate(workload.pods(settings.pods)):
        options: dict[str, object] = {"pod-name": f"pod-{i}"}
        for key, value in extra.items():
            if key == "speed":
                options["time-scale"] = settings.time_scale * float(str(value))
            else:
                options[key] = value
        lines.append(f"  - {json.dumps(options)}")
    return "\n".join(lines) + "\n"


@dataclass(slots=True)
class Plan:
    """One workload's requests and arrivals, shared by every router."""

    workload: Workload
    rates: list[float]
    requests: list[LabRequest]
    arrivals: list[list[float]]
    """Per rung, offsets from the rung's start."""
    slices: list[tuple[int, int]]
    """Per rung, the [start, end) indexes into `requests`."""


def make_plan(workload: Workload, settings: Settings) -> Plan:
    capacity = workload.capacity_rps_per_pod * settings.pods * settings.time_scale
    rates = [capacity * f for f in settings.factors]
    counts = [max(1, round(rate * settings.duration)) for rate in rates]
    rng = random.Random(f"{settings.seed}:{workload.name}:requests")  # noqa: S311 - seeded
    requests = workload.make(rng, sum(counts), settings.pods)
    arrivals, slices, start = [], [], 0
    for i, (rate, count) in enumerate(zip(rates, counts, strict=True)):
        timing = random.Random(f"{settings.seed}:{workload.name}:arrivals:{i}")  # noqa: S311
        arrivals.append(poisson_arrivals(timing.expovariate, rate, count))
        slices.append((start, start + count))
        start += count
    return Plan(workload, rates, requests, arrivals, slices)


async def _get_state(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    async with session.get(url) as answer:
        body = await answer.json()
    pods: list[dict[str, Any]] = body["pods"]
    return pods


async def run_router(
    plan: Plan, router: Router, stack: Stack, settings: Settings, label: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every rung of `plan` through `stack`; the rows of the report and the pods' timeline."""
    rows: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    boundaries: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    pids = {**stack.pids(), "client": os.getpid()}
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        aiohttp.ClientSession() as control,
    ):
        run_start = time.perf_counter()

        async def poll() -> None:
            while True:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    pods = await _get_state(control, stack.state_url)
                    samples.append({"t": time.perf_counter() - run_start, "pods": pods})
                await asyncio.sleep(0.5)

        poller = asyncio.create_task(poll())
        try:
            for rung, (rate, (lo, hi)) in enumerate(zip(plan.rates, plan.slices, strict=True)):
                before_counters = await _get_state(control, stack.state_url)
                before_cpu = CpuSnapshot.take(pids)
                rung_start = time.perf_counter() - run_start
                boundaries.append(rung_start)
                factor = settings.factors[rung]
                print(
                    f"  {label} step {rung + 1}/{len(plan.rates)}: load {factor:.2f} = "
                    f"{rate:.1f} req/s, {hi - lo} requests",
                    flush=True,
                )

                def progress(
                    outcomes: list[Outcome],
                    rung_start: float = rung_start,
                    before_cpu: CpuSnapshot = before_cpu,
                ) -> None:
                    done = sum(1 for o in outcomes if o.ok or o.error)
                    failed = sum(1 for o in outcomes if o.error)
                    now = CpuSnapshot.take({})
                    busy = (now.machine_busy - before_cpu.machine_busy) / (
                        (now.at - before_cpu.at) * (os.cpu_count() or 1)
                    )
                    elapsed = time.perf_counter() - run_start - rung_start
                    print(
                        f"    t={elapsed:5.1f}s sent {len(outcomes)} done {done} "
                        f"failed {failed} in flight {len(outcomes) - done} "
                        f"machine CPU {busy * 100:.0f} %",
                        flush=True,
                    )

                indexed = list(enumerate(plan.requests[lo:hi], start=lo))
                outcomes = await run_rung(
                    session,
                    stack.url,
                    indexed,
                    plan.arrivals[rung],
                    rung=rung,
                    run_start=run_start,
                    drain_s=settings.drain,
                    on_progress=progress,
                )
                after_cpu = CpuSnapshot.take(pids)
                after_counters = await _get_state(control, stack.state_url)
                figures = report.rung_figures(outcomes, before_counters, after_counters, rung_start)
                wall = after_cpu.at - before_cpu.at
                cpu = {
                    "machine": (after_cpu.machine_busy - before_cpu.machine_busy)
                    / (wall * (os.cpu_count() or 1)),
                    "steal": (after_cpu.steal - before_cpu.steal) / wall,
                    "wall": wall,
                    **{
                        name: (after_cpu.processes[name] - before_cpu.processes[name]) / wall
                        for name in pids
                    },
                }
                rows.append(
                    {
                        "workload": plan.workload.name,
                        "router": router.name,
                        "rung": rung,
                        "factor": factor,
                        "offered_rps": rate,
                        "figures": figures,
                        "cpu": cpu,
                        "outcomes": [_outcome_row(o) for o in outcomes],
                    }
                )
                f = figures
                print(
                    f"    -> TTFT p90 {report._ms(f['ttft_p90'])} ms, ITL p50 "
                    f"{report._ms(f['itl_p50'])} ms, hit rate {report._pct(f['hit_rate'])}, "
                    f"failed {f['failed']}/{f['sent']}, machine CPU {cpu['machine'] * 100:.0f} %",
                    flush=True,
                )
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
    return rows, {"samples": samples, "rungs": boundaries}


def _outcome_row(o: Outcome) -> dict[str, Any]:
    """What results.json keeps per request (ITL gaps summarised)."""
    return {
        "i": o.index,
        "group": o.group,
        "pod": o.pod,
        "sent": round(o.sent, 4),
        "status": o.status,
        "ttft": o.ttft,
        "e2e": o.e2e,
        "tokens": o.tokens,
        "error": o.error,
    }


def estimate_seconds(settings: Settings) -> float:
    # Measured here: about 5 s of drain per step and 5 s to start and stop a stack.
    per_router = len(settings.factors) * (settings.duration + 5) + 5
    runs = sum(len(settings.routers_for(WORKLOADS[w])) for w in settings.workloads)
    return runs * per_router + (cost.estimate_seconds(settings.quick) if settings.cost else 0)


async def run_lab(settings: Settings, command: str) -> int:
    settings.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(
        f"bench.lab: {len(settings.workloads)} workloads, {settings.pods} pods, time scale "
        f"{settings.time_scale}, steps {settings.factors} x {settings.duration:.0f} s, seed "
        f"{settings.seed}; about {estimate_seconds(settings) / 60:.0f} min",
        flush=True,
    )
    all_rows: list[dict[str, Any]] = []
    timelines: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="igw-lab-") as tmp:
        for workload_name in settings.workloads:
            workload = WORKLOADS[workload_name]
            plan = make_plan(workload, settings)
            timelines[workload_name] = {}
            print(f"\n== {workload_name}: {workload.title}", flush=True)
            for router_name in settings.routers_for(workload):
                router = ROUTERS[router_name]
                label = f"[{workload_name} | {router_name}]"
                workdir = Path(tmp) / workload_name / router_name
                try:
                    begin = time.monotonic()
                    with Stack.started(router, sim_yaml(workload, settings), workdir) as stack:
                        print(f"  {label} started in {time.monotonic() - begin:.1f} s", flush=True)
                        rows, timeline = await run_router(plan, router, stack, settings, label)
                except (RuntimeError, OSError) as e:
                    print(f"{label} failed: {e}", file=sys.stderr)
                    return 1
                all_rows += rows
                timelines[workload_name][router_name] = timeline
            write_report(
                settings,
                command,
                all_rows,
                timelines,
                elapsed=time.monotonic() - started,
                cost_md=None,
            )
        cost_md = None
        if settings.cost:
            print("\n== cost benchmarks", flush=True)
            cost_md = cost.run(settings.out, quick=settings.quick)
    elapsed = time.monotonic() - started
    write_report(settings, command, all_rows, timelines, elapsed=elapsed, cost_md=cost_md)
    print(f"\nbench.lab: done in {elapsed / 60:.1f} min; report: {settings.out / 'report.md'}")
    return 0


def write_report(
    settings: Settings,
    command: str,
    rows: list[dict[str, Any]],
    timelines: dict[str, dict[str, Any]],
    *,
    elapsed: float,
    cost_md: str | None,
) -> None:
    out = settings.out
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        "# Benchmark lab: igw vs the alternatives, on a simulated fleet",
        "",
        f"- command: `{command}`",
        f"- seed: {settings.seed}",
        f"- date: {now}; wall time {elapsed / 60:.1f} min",
        (
            f"- machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
        ),
        (
            f"- fleet: {settings.pods} `igw-sim` pods, preset `{PRESET}`, time scale "
            f"{settings.time_scale} (latencies are wall clock; multiply by "
            f"{settings.time_scale} for the real GPU's)"
        ),
        (
            f"- load steps: {', '.join(f'{f:.2f}' for f in settings.factors)} x each workload's "
            f"nominal capacity, {settings.duration:.0f} s of Poisson arrivals each, up to "
            f"{settings.drain:.0f} s drain; the same requests and arrival times for every router"
        ),
        "- routers: " + "; ".join(f"`{r.name}`: {r.description}" for r in ROUTERS.values()),
        "",
        "## Targets (DESIGN.md §6) and checks",
        "",
        *checks.verdicts(rows, settings.workloads, top=len(settings.factors) - 1),
        "",
        (
            "The CPU column is the whole machine's use during the step (all cores); near 100 % the "
            "box, not the router, limits the figures."
        ),
        "",
        "## Findings",
        "",
        *checks.findings(rows, settings.workloads, top=len(settings.factors) - 1),
        "",
    ]
    for workload in settings.workloads:
        wrows = [r for r in rows if r["workload"] == workload]
        if not wrows:
            continue
        w = WORKLOADS[workload]
        lines += [f"## {workload}: {w.title}", "", *report.workload_table(wrows), ""]
        report.plot_ttft(workload, wrows, out / f"{workload}-ttft.png")
        if timelines.get(workload):
            report.plot_pods(workload, timelines[workload], out / f"{workload}-pods.png")
        lines += [
            f"![TTFT p90 vs load]({workload}-ttft.png)",
            f"![per-pod load]({workload}-pods.png)",
            "",
        ]
    if cost_md:
        lines += ["## Cost", "", cost_md, ""]
    lines += ["## Method", "", __doc__.split("\n\n", 1)[1].strip(), "", report.__doc__ or "", ""]
    (out / "report.md").write_text("\n".join(lines))
    (out / "results.json").write_text(
        json.dumps(
            {
                "command": command,
                "seed": settings.seed,
                "settings": {
                    k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()
                },
                "rows": rows,
            },
            indent=1,
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    settings = parse_args(args)
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[key]
    # The fleet process is `python -m bench.lab.fleet`: it needs the repository on its path.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    command = shlex.join(["python", "-m", "bench.lab", *args])
    try:
        return uvloop.run(run_lab(settings, command))
    except KeyboardInterrupt:
        return 130
