"""The soak's figures: growth per 100k requests after warm-up, outcomes, and the written report.

Growth is the least-squares slope of a process's RSS (and open FDs) over the requests answered,
fitted to the samples after warm-up, times 100,000: a leak of a few bytes per request shows as a
steady slope where a cache that fills and stops shows as flat. Only the samples of the process's
last PID are fitted (a restarted service starts again from nothing; restarts are reported). A
process "keeps growing" when its slope exceeds `RSS_LIMIT_MIB` or `FD_LIMIT` per 100k requests.
A short run amplifies noise in the slope: trust the long runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench._soak_client import OUTCOMES
from bench._soak_mix import KINDS

__all__ = ["FD_LIMIT", "RSS_LIMIT_MIB", "growth", "markdown", "plot", "slope"]

RSS_LIMIT_MIB = 1.0
FD_LIMIT = 2.0
PER = 100_000


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The least-squares slope of ys over xs (0 with fewer than two distinct xs)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var


def _one(samples: Sequence[Mapping[str, Any]], name: str, warmup: int) -> dict[str, Any]:
    seen = [(s["requests"], s["procs"].get(name)) for s in samples]
    readings = [(n, r) for n, r in seen if r is not None]
    pids = list(dict.fromkeys(r["pid"] for _, r in readings))
    last = [(n, r) for n, r in readings if pids and r["pid"] == pids[-1]]
    after = [(n, r) for n, r in last if n >= warmup] or last[-2:]
    xs = [float(n) for n, _ in after]
    rss = [r["rss_kib"] / 1024 for _, r in after]
    fds = [float(r["fds"]) for _, r in after]
    out: dict[str, Any] = {
        "pids": pids,
        "restarts": max(len(pids) - 1, 0),
        "absent_samples": len(seen) - len(readings),
        "fitted_samples": len(after),
        "rss_mib_start": rss[0] if rss else None,
        "rss_mib_end": rss[-1] if rss else None,
        "rss_mib_max": max(rss) if rss else None,
        "rss_mib_per_100k": slope(xs, rss) * PER,
        "fds_start": fds[0] if fds else None,
        "fds_end": fds[-1] if fds else None,
        "fds_max": max(fds) if fds else None,
        "fds_per_100k": slope(xs, fds) * PER,
    }
    out["growing"] = out["rss_mib_per_100k"] > RSS_LIMIT_MIB or out["fds_per_100k"] > FD_LIMIT
    return out


def growth(
    samples: Sequence[Mapping[str, Any]], names: Sequence[str], warmup: int
) -> dict[str, Any]:
    """Process name -> its figures after `warmup` requests (module docstring)."""
    return {name: _one(samples, name, warmup) for name in names}


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _outcome_table(by_kind: Mapping[str, Mapping[str, int]]) -> list[str]:
    lines = ["| kind | expected | sent | " + " | ".join(OUTCOMES) + " |"]
    lines.append("|---" * (3 + len(OUTCOMES)) + "|")
    for kind in KINDS:
        counts = by_kind.get(kind.name, {})
        cells = [str(counts.get(o, 0)) for o in OUTCOMES]
        sent = sum(counts.values())
        lines.append(f"| {kind.name} | {kind.expect} | {sent} | " + " | ".join(cells) + " |")
    return lines


def _growth_table(figures: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = [
        (
            "| process | RSS MiB after warm-up -> end (max) | RSS MiB / 100k "
            "| FDs after warm-up -> end (max) | FDs / 100k | restarts | keeps growing |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in figures.items():
        lines.append(
            f"| {name} | {_fmt(f['rss_mib_start'])} -> {_fmt(f['rss_mib_end'])} "
            f"({_fmt(f['rss_mib_max'])}) | {f['rss_mib_per_100k']:+.2f} | "
            f"{_fmt(f['fds_start'], 0)} -> {_fmt(f['fds_end'], 0)} ({_fmt(f['fds_max'], 0)}) | "
            f"{f['fds_per_100k']:+.1f} | {f['restarts']} | {'YES' if f['growing'] else 'no'} |"
        )
    return lines


def markdown(result: Mapping[str, Any], method: str, plot_name: str | None) -> str:
    """The report: what ran, the outcomes, each process's growth, the plot."""
    lines = ["# Soak: the local gateway under a long realistic mix", ""]
    lines += [f"- {fact}" for fact in result["facts"]]
    lines += ["", "## Verdict", "", *[f"- {v}" for v in result["verdicts"]], ""]
    lines += ["## Outcomes per kind of request", "", *_outcome_table(result["by_kind"]), ""]
    if result["failure_examples"]:
        lines += ["Unexpected outcomes (first of each):", ""]
        lines += [f"- {example}" for example in result["failure_examples"]]
        lines.append("")
    lines += [f"## Growth after warm-up ({result['warmup']:,} requests)", ""]
    lines += [*_growth_table(result["growth"]), ""]
    if plot_name:
        lines += [f"![RSS and open FDs over requests]({plot_name})", ""]
    lines += ["## Method", "", method, ""]
    return "\n".join(lines)


def plot(
    samples: Sequence[Mapping[str, Any]], names: Sequence[str], warmup: int, path: Path
) -> None:
    """RSS and open FDs of each process over the requests answered."""
    fig, (rss_axes, fd_axes) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name in names:
        points = [(s["requests"], s["procs"].get(name)) for s in samples]
        xs = [n for n, r in points if r is not None]
        readings = [r for _, r in points if r is not None]
        rss_axes.plot(xs, [r["rss_kib"] / 1024 for r in readings], label=name)
        fd_axes.plot(xs, [r["fds"] for r in readings], label=name)
    for axes, label in ((rss_axes, "RSS (MiB)"), (fd_axes, "open file descriptors")):
        axes.axvline(warmup, color="grey", linestyle=":", label="end of warm-up")
        axes.set_xlabel("requests answered")
        axes.set_ylabel(label)
        axes.set_title(f"{label} per process")
        axes.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
