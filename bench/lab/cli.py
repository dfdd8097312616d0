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

import argparse
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
from bench.lab import cost, report
from bench.lab.loadgen import Outcome, poisson_arrivals, run_rung
from bench.lab.routers import ROUTERS, Router, Stack
from bench.lab.workloads import MODEL, WORKLOADS, LabRequest, Workload

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "bench" / "results" / "lab"
QUICK_OUT = REPO / "bench" / "results" / "lab-quick"
PRESET = "llama-3.1-8b-h100"
ALL_ROUTERS = tuple(ROUTERS)
CORE_ROUTERS = ("round-robin", "least-request", "igw", "omniscient")
"""Routers on every workload but `prefix-high`, which runs all six (the igw variants differ
most where prefixes matter most; running them everywhere would not fit in 30 minutes)."""


@dataclass(frozen=True, slots=True)
class Settings:
    workloads: tuple[str, ...]
    routers: tuple[str, ...] | None
    """None: all routers on `prefix-high`, `CORE_ROUTERS` on the others."""
    pods: int
    time_scale: float
    factors: tuple[float, ...]
    duration: float
    drain: float
    seed: int
    cost: bool
    quick: bool
    out: Path

    def routers_for(self, workload: Workload) -> tuple[str, ...]:
        if self.routers is not None:
            return self.routers
        return ALL_ROUTERS if workload.name == "prefix-high" else CORE_ROUTERS


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_args(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench.lab", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few-minute run: prefix-high and sharegpt, 3 routers, 2 short steps",
    )
    parser.add_argument("--workloads", type=_csv, help=f"comma-separated: {', '.join(WORKLOADS)}")
    parser.add_argument("--routers", type=_csv, help=f"comma-separated: {', '.join(ROUTERS)}")
    parser.add_argument("--pods", type=int, default=8)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.5,
        help="simulated seconds per wall second (0.5: GPUs at half speed)",
    )
    parser.add_argument(
        "--factors",
        type=lambda t: tuple(float(x) for x in _csv(t)),
        help="load steps as multiples of the nominal capacity (0.5,1,2)",
    )
    parser.add_argument("--duration", type=float, help="seconds of arrivals per step (10)")
    parser.add_argument(
        "--drain", type=float, default=30.0, help="max seconds to wait after a step"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-cost", action="store_true", help="skip the cost benchmarks")
    parser.add_argument(
        "--out", type=Path, help="results directory (bench/results/lab, or lab-quick)"
    )
    args = parser.parse_args(list(argv))
    quick = bool(args.quick)
    workloads = args.workloads or (("prefix-high", "sharegpt") if quick else tuple(WORKLOADS))
    routers = args.routers or (("round-robin", "igw", "omniscient") if quick else None)
    for name in workloads:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; workloads: {', '.join(WORKLOADS)}")
    for name in routers or ():
        if name not in ROUTERS:
            parser.error(f"unknown router {name!r}; routers: {', '.join(ROUTERS)}")
    factors = args.factors or ((0.5, 2.0) if quick else (0.5, 1.0, 2.0))
    duration = args.duration or (8.0 if quick else 10.0)
    if args.pods < 1 or args.time_scale <= 0 or duration <= 0 or args.drain < 0:
        parser.error("--pods, --time-scale and --duration must be > 0, --drain >= 0")
    if not factors or min(factors) <= 0:
        parser.error("--factors must be positive numbers")
    return Settings(
        workloads,
        routers,
        args.pods,
        args.time_scale,
        factors,
        duration,
        args.drain,
        args.seed,
        cost=not args.no_cost,
        quick=quick,
        out=args.out or (QUICK_OUT if quick else DEFAULT_OUT),
    )


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


def _find(
    rows: Sequence[dict[str, Any]], workload: str, router: str, rung: int
) -> dict[str, Any] | None:
    for r in rows:
        if (r["workload"], r["router"], r["rung"]) == (workload, router, rung):
            return r
    return None


def verdicts(rows: Sequence[dict[str, Any]], settings: Settings) -> list[str]:
    """The DESIGN.md §6 targets and the omniscient router's own check, met or not."""
    lines = ["| check | measured | target | verdict |", "| --- | --- | --- | --- |"]
    top = len(settings.factors) - 1
    rr, igw, omni = (
        _find(rows, "prefix-high", name, top) for name in ("round-robin", "igw", "omniscient")
    )

    def p90(row: dict[str, Any] | None) -> float | None:
        return None if row is None else row["figures"]["ttft_p90"]

    if p90(rr) and p90(igw):
        ratio = p90(rr) / p90(igw)  # type: ignore[operator]
        verdict = "met" if ratio >= report.TTFT_RATIO_VS_RR else "NOT met"
        lines.append(
            f"| prefix-high, top load: round-robin p90 TTFT / igw p90 TTFT | "
            f"{ratio:.1f}x | >= {report.TTFT_RATIO_VS_RR:.0f}x | {verdict} |"
        )
    else:
        lines.append("| prefix-high, top load: round-robin / igw p90 TTFT | not run | >= 5x | - |")
    if p90(igw) and p90(omni):
        ratio = p90(igw) / p90(omni)  # type: ignore[operator]
        verdict = "met" if ratio <= 1 + report.WITHIN_OMNISCIENT else "NOT met"
        lines.append(
            f"| prefix-high, top load: igw p90 TTFT / omniscient p90 TTFT | "
            f"{ratio:.2f}x | <= {1 + report.WITHIN_OMNISCIENT:.2f}x | {verdict} |"
        )
    else:
        lines.append(
            "| prefix-high, top load: igw / omniscient p90 TTFT | not run | <= 1.15x | - |"
        )
    for workload in settings.workloads:
        row = _find(rows, workload, "omniscient", top)
        others = [
            r
            for r in rows
            if r["workload"] == workload
            and r["rung"] == top
            and r["router"] != "omniscient"
            and r["figures"]["ttft_p90"] is not None
        ]
        if row is None or row["figures"]["ttft_p90"] is None or not others:
            continue
        best = min(others, key=lambda r: r["figures"]["ttft_p90"])
        mine, theirs = row["figures"]["ttft_p90"], best["figures"]["ttft_p90"]
        verdict = "yes" if mine <= theirs * (1 + report.TIE) else "NO: see Findings"
        lines.append(
            f"| {workload}, top load: omniscient beats or ties every router (p90 TTFT) "
            f"| {mine:,.0f} ms vs {best['router']} {theirs:,.0f} ms | <= best + 5 % "
            f"| {verdict} |"
        )
    return lines


def moved_off_home(rows: Sequence[dict[str, Any]], workload: str, router: str, rung: int) -> int:
    """Requests of `rung` sent to a pod that had not served their group before, although
    another pod had (earlier rungs of the same router count): cache misses by choice."""
    homes: dict[str, set[str]] = {}
    ordered = sorted(
        (
            r
            for r in rows
            if (r["workload"], r["router"]) == (workload, router) and r["rung"] <= rung
        ),
        key=lambda r: r["rung"],
    )
    moved = 0
    for row in ordered:
        for o in sorted(row["outcomes"], key=lambda o: o["sent"]):
            if not o["group"] or not o["pod"]:
                continue
            home = homes.setdefault(o["group"], set())
            if row["rung"] == rung and home and o["pod"] not in home:
                moved += 1
            home.add(o["pod"])
    return moved


def findings(rows: Sequence[dict[str, Any]], settings: Settings) -> list[str]:
    """For each workload whose top step the omniscient router does not win or tie: the
    figures that say why, side by side with the router that did better."""
    top = len(settings.factors) - 1
    lines: list[str] = []
    for workload in settings.workloads:
        at_top = {r["router"]: r for r in rows if r["workload"] == workload and r["rung"] == top}
        omniscient = at_top.get("omniscient")
        if omniscient is None or omniscient["figures"]["ttft_p90"] is None:
            continue
        others = [r for name, r in at_top.items() if name != "omniscient"]
        others = [r for r in others if r["figures"]["ttft_p90"] is not None]
        if not others:
            continue
        best = min(others, key=lambda r: r["figures"]["ttft_p90"])
        mine, theirs = omniscient["figures"], best["figures"]
        if mine["ttft_p90"] <= theirs["ttft_p90"] * (1 + report.TIE):
            continue
        lines += [
            (
                f"- **{workload}**: at the top step the omniscient router's p90 TTFT is "
                f"{mine['ttft_p90']:,.0f} ms, `{best['router']}`'s {theirs['ttft_p90']:,.0f} ms. "
                f"Prefix-cache hit rate {report._pct(mine['hit_rate'])} vs "
                f"{report._pct(theirs['hit_rate'])}; group affinity "
                f"{report._pct(mine['affinity'])} vs {report._pct(theirs['affinity'])}; requests "
                f"sent away from a pod that had served their group: "
                f"{moved_off_home(rows, workload, 'omniscient', top)} vs "
                f"{moved_off_home(rows, workload, best['router'], top)} of {mine['sent']}; "
                f"TTFT p50 {report._ms(mine['ttft_p50'])} vs {report._ms(theirs['ttft_p50'])} ms."
            )
        ]
    if lines:
        lines += [
            "",
            (
                "Where the figures show more requests moved off their group's pod and a lower hit "
                "rate, the cause is the picker's greed (`bench.lab.fleet`): it sends each request "
                "where its own first token comes soonest, counting only part of what that costs "
                "later requests, so when a pod holding a group's prefix is busy it may recompute "
                "the prefix on an idler pod; each move is a miss now and, under cache pressure, an "
                "eviction. A router that keeps groups on their pods (igw's prefix scorer) can then "
                "do better at the tail: full information does not make a myopic policy optimal."
            ),
        ]
    return lines or ["The omniscient router won or tied (within 5 %) every workload's top step."]


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
        *verdicts(rows, settings),
        "",
        (
            "The CPU column is the whole machine's use during the step (all cores); near 100 % the "
            "box, not the router, limits the figures."
        ),
        "",
        "## Findings",
        "",
        *findings(rows, settings),
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
