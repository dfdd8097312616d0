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

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvloop

from bench._paths import REPO, command_line, repo_relative
from bench.lab import cost
from bench.lab.plan import make_plan, sim_yaml
from bench.lab.results import write_report
from bench.lab.routers import ROUTERS, Stack
from bench.lab.rungs import run_router
from bench.lab.settings import Settings, parse_args
from bench.lab.workloads import WORKLOADS, Workload

__all__ = ["main", "run_lab"]

METHOD = (__doc__ or "").partition("\n\n")[2].strip()
"""The method part of this docstring, repeated in every report."""

Rows = list[dict[str, Any]]
Timelines = dict[str, dict[str, Any]]


def estimate_seconds(settings: Settings) -> float:
    # Measured here: about 5 s of drain per step and 5 s to start and stop a stack.
    per_router = len(settings.factors) * (settings.duration + 5) + 5
    runs = sum(len(settings.routers_for(WORKLOADS[w])) for w in settings.workloads)
    return runs * per_router + (cost.estimate_seconds(settings.quick) if settings.cost else 0)


async def _run_workload(
    workload: Workload, settings: Settings, tmp: Path
) -> tuple[Rows, dict[str, Any]] | None:
    """Every router's run of the workload, each on a fresh stack; None if one failed."""
    plan = make_plan(workload, settings)
    rows: Rows = []
    timelines: dict[str, Any] = {}
    print(f"\n== {workload.name}: {workload.title}", flush=True)
    for router_name in settings.routers_for(workload):
        router = ROUTERS[router_name]
        label = f"[{workload.name} | {router_name}]"
        workdir = tmp / workload.name / router_name
        try:
            begin = time.monotonic()
            with Stack.started(router, sim_yaml(workload, settings), workdir) as stack:
                print(f"  {label} started in {time.monotonic() - begin:.1f} s", flush=True)
                router_rows, timelines[router_name] = await run_router(
                    plan, router, stack, settings, label
                )
        except (RuntimeError, OSError) as e:
            print(f"{label} failed: {e}", file=sys.stderr)
            return None
        rows += router_rows
    return rows, timelines


async def run_lab(settings: Settings, command: str) -> int:
    settings.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(
        f"bench.lab: {len(settings.workloads)} workloads, {settings.pods} pods, time scale "
        f"{settings.time_scale}, steps {settings.factors} x {settings.duration:.0f} s, seed "
        f"{settings.seed}; about {estimate_seconds(settings) / 60:.0f} min",
        flush=True,
    )
    rows: Rows = []
    timelines: Timelines = {}
    with tempfile.TemporaryDirectory(prefix="igw-lab-") as tmp:
        for name in settings.workloads:
            if (done := await _run_workload(WORKLOADS[name], settings, Path(tmp))) is None:
                return 1
            rows += done[0]
            timelines[name] = done[1]
            elapsed = time.monotonic() - started
            write_report(
                settings, command, rows, timelines, elapsed=elapsed, cost_md=None, method=METHOD
            )
        cost_md = None
        if settings.cost:
            print("\n== cost benchmarks", flush=True)
            cost_md = cost.run(settings.out, quick=settings.quick)
    elapsed = time.monotonic() - started
    write_report(
        settings, command, rows, timelines, elapsed=elapsed, cost_md=cost_md, method=METHOD
    )
    report_md = repo_relative(settings.out / "report.md")
    print(f"\nbench.lab: done in {elapsed / 60:.1f} min; report: {report_md}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    settings = parse_args(args)
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        del os.environ[key]
    # The fleet process is `python -m bench.lab.fleet`: it needs the repository on its path.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    command = command_line(["python", "-m", "bench.lab", *args])
    try:
        return uvloop.run(run_lab(settings, command))
    except KeyboardInterrupt:
        return 130
