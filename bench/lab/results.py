"""What a lab run writes into its results directory: `report.md`, `results.json` and the plots.

The report opens with the run's facts (the command, seed, date, machine, fleet, load steps and
routers), then DESIGN.md §6's targets and the findings (`bench.lab.checks`), a table and two
plots per workload (`bench.lab.report`), the cost section if the cost benchmarks ran, and the
method. `results.json` holds the command, the settings and every row, each request's outcome
included. Paths are written relative to the repository root (`bench._paths`). Both files are
rewritten after every workload, so an interrupted run leaves what it measured.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench._paths import repo_relative
from bench.lab import acceptance, checks, report
from bench.lab.routers import ROUTERS
from bench.lab.settings import PRESET, Settings
from bench.lab.workloads import WORKLOADS

__all__ = ["write_report"]


def _facts(settings: Settings, command: str, elapsed: float) -> list[str]:
    """The run's facts, as a Markdown list."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return [
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
    ]


def _verdicts(settings: Settings, rows: list[dict[str, Any]]) -> list[str]:
    """The targets' table and the findings, judged at the top load step."""
    top = len(settings.factors) - 1
    return [
        "## Targets (DESIGN.md §6) and checks",
        "",
        *checks.verdicts(rows, settings.workloads, top=top),
        "",
        (
            "The CPU column is the whole machine's use during the step (all cores); near 100 % the "
            "box, not the router, limits the figures."
        ),
        "",
        "## The learned-latency profile (issue 14's acceptance)",
        "",
        *(
            acceptance.verdicts(rows, settings.workloads, top=top)
            or [f"`{acceptance.PROFILE_ROUTER}` did not run."]
        ),
        "",
        "## Findings",
        "",
        *checks.findings(rows, settings.workloads, top=top),
        "",
    ]


def _workloads(
    settings: Settings, rows: list[dict[str, Any]], timelines: dict[str, dict[str, Any]]
) -> list[str]:
    """Each workload's table, with its two plots written beside the report."""
    out = settings.out
    lines: list[str] = []
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
    return lines


def _results_json(settings: Settings, command: str, rows: list[dict[str, Any]]) -> str:
    fields = {
        k: repo_relative(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()
    }
    document = {"command": command, "seed": settings.seed, "settings": fields, "rows": rows}
    return json.dumps(document, indent=1)


def write_report(
    settings: Settings,
    command: str,
    rows: list[dict[str, Any]],
    timelines: dict[str, dict[str, Any]],
    *,
    elapsed: float,
    cost_md: str | None,
    method: str,
) -> None:
    """Writes `report.md`, `results.json` and the plots into `settings.out`."""
    lines = [
        "# Benchmark lab: igw vs the alternatives, on a simulated fleet",
        "",
        *_facts(settings, command, elapsed),
        "",
        *_verdicts(settings, rows),
        *_workloads(settings, rows, timelines),
    ]
    if cost_md:
        lines += ["## Cost", "", cost_md, ""]
    lines += ["## Method", "", method, "", report.__doc__ or "", ""]
    (settings.out / "report.md").write_text("\n".join(lines))
    (settings.out / "results.json").write_text(_results_json(settings, command, rows))
