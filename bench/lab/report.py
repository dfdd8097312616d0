"""The lab's figures per rung, and the Markdown report and PNG plots made from them.

Percentiles are nearest-rank over the rung's successful requests (TTFT, end to end) and over
every token gap of those requests (ITL). Throughput is successful requests (and output tokens)
per second from the rung's first send to its last answer. The prefix-cache hit rate is the
simulators' own counters (vLLM's `prefix_cache_hits` / `prefix_cache_queries`, in tokens) over
the rung. SLO attainment is the share of the rung's requests (failed ones included, as misses)
whose TTFT met `TTFT_SLO_MS`. Group affinity (prefix workloads) is the share of a group's
requests that went to the pod that served most of that group, averaged over requests: 1.0 keeps
every group on one pod. Envoy's and the EPP's CPU per request are their processes' CPU time
over the step (scraping included for the EPP) divided by the requests sent; the omniscient
picker's runs inside the fleet's process and is not separated.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.lab.outcome import Outcome

TTFT_RATIO_VS_RR = 5.0
"""DESIGN.md §6: igw's p90 TTFT at least 5x lower than round-robin (shared prefix, high load)."""
WITHIN_OMNISCIENT = 0.15
"""DESIGN.md §6: within 15 % of the omniscient router."""
TTFT_SLO_MS = 1000.0
"""The TTFT target of the SLO attainment column, wall clock (500 ms on the real GPU at the
lab's time scale of 0.5): the kind of target an interactive chat or agent step sets."""
TIE = 0.05
"""Two p90 TTFTs within 5 % of each other count as a tie when judging the omniscient router."""


def pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def affinity(outcomes: Sequence[Outcome]) -> float | None:
    by_group: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for o in outcomes:
        if o.answer.ok and o.group:
            by_group[o.group][o.answer.pod] += 1
    total = sum(sum(c.values()) for c in by_group.values() if sum(c.values()) > 1)
    if not total:
        return None
    kept = sum(max(c.values()) for c in by_group.values() if sum(c.values()) > 1)
    return kept / total


def rung_figures(
    outcomes: Sequence[Outcome],
    counters_before: Sequence[Mapping[str, Any]],
    counters_after: Sequence[Mapping[str, Any]],
    rung_start: float,
) -> dict[str, Any]:
    ok = [o for o in outcomes if o.answer.ok]
    answers = [o.answer for o in ok]
    ttft = [a.ttft * 1000 for a in answers if a.ttft is not None]
    itl = [gap * 1000 for a in answers for gap in a.itl]
    e2e = [a.e2e * 1000 for a in answers if a.e2e is not None]
    ends = [o.sent + o.answer.e2e for o in ok if o.answer.e2e is not None]
    span = max(ends) - rung_start if ends else 0.0
    queries = sum(
        a["prefix_queries"] - b["prefix_queries"]
        for a, b in zip(counters_after, counters_before, strict=True)
    )
    hits = sum(
        a["prefix_hits"] - b["prefix_hits"]
        for a, b in zip(counters_after, counters_before, strict=True)
    )
    per_pod = collections.Counter(a.pod for a in answers)
    errors = collections.Counter(o.answer.error for o in outcomes if not o.answer.ok)
    return {
        "sent": len(outcomes),
        "ok": len(ok),
        "failed": len(outcomes) - len(ok),
        "errors": dict(errors.most_common(3)),
        "ttft_p50": pct(ttft, 50),
        "ttft_p90": pct(ttft, 90),
        "ttft_p99": pct(ttft, 99),
        "slo_attainment": (
            sum(1 for t in ttft if t <= TTFT_SLO_MS) / len(outcomes) if outcomes else None
        ),
        "itl_p50": pct(itl, 50),
        "itl_p90": pct(itl, 90),
        "e2e_p50": pct(e2e, 50),
        "e2e_p90": pct(e2e, 90),
        "throughput_rps": len(ok) / span if span > 0 else 0.0,
        "output_tps": sum(a.tokens for a in answers) / span if span > 0 else 0.0,
        "hit_rate": hits / queries if queries else None,
        "affinity": affinity(outcomes),
        "per_pod": dict(sorted(per_pod.items())),
    }


def as_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def as_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f} %"


def workload_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    header = (
        f"| router | load | offered rps | TTFT p50 ms | TTFT p90 ms | TTFT p99 ms "
        f"| TTFT <= {TTFT_SLO_MS / 1000:g} s | ITL p50 ms "
        "| ITL p90 ms | throughput rps | output tok/s | prefix hit rate | group affinity "
        "| failed | CPU (machine) | Envoy / EPP CPU ms per request | p90 TTFT / omniscient |"
    )
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    best = {r["rung"]: r["figures"]["ttft_p90"] for r in rows if r["router"] == "omniscient"}
    for r in rows:
        f = r["figures"]
        mine, omniscient = f["ttft_p90"], best.get(r["rung"])
        ratio = f"{mine / omniscient:.2f}x" if mine and omniscient else "-"
        lines.append(
            f"| {r['router']} | {r['factor']:.2f} | {r['offered_rps']:.1f} "
            f"| {as_ms(f['ttft_p50'])} | {as_ms(f['ttft_p90'])} | {as_ms(f['ttft_p99'])} "
            f"| {as_pct(f.get('slo_attainment'))} | {as_ms(f['itl_p50'])} "
            f"| {as_ms(f['itl_p90'])} | {f['throughput_rps']:.2f} | {f['output_tps']:.0f} "
            f"| {as_pct(f['hit_rate'])} | {as_pct(f['affinity'])} | {f['failed']}/{f['sent']} "
            f"| {r['cpu']['machine'] * 100:.0f} % | {_gateway_cpu(r)} | {ratio} |"
        )
    return lines


def _gateway_cpu(row: Mapping[str, Any]) -> str:
    """Envoy's and the EPP's CPU over the step per request sent ("-": no EPP in the path)."""
    cpu, sent = row["cpu"], row["figures"]["sent"]
    if not sent or "wall" not in cpu:
        return "-"

    def ms(name: str) -> str:
        # `igw-epp --workers N`: the parent's CPU plus each worker's (`epp-w<i>`).
        used = [v for k, v in cpu.items() if k == name or k.startswith(f"{name}-w")]
        return f"{sum(used) * cpu['wall'] * 1000 / sent:.2f}" if used else "-"

    return f"{ms('envoy')} / {ms('epp')}"


def plot_ttft(workload: str, rows: Sequence[Mapping[str, Any]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    routers = list(dict.fromkeys(r["router"] for r in rows))
    for router in routers:
        points = [
            (r["offered_rps"], r["figures"]["ttft_p90"])
            for r in rows
            if r["router"] == router and r["figures"]["ttft_p90"] is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=router)
    ax.set_xlabel("offered load (requests/s)")
    ax.set_ylabel("TTFT p90 (ms, log scale)")
    ax.set_yscale("log")
    ax.set_title(f"{workload}: TTFT p90 vs offered load")
    ax.grid(visible=True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_pods(workload: str, timelines: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    routers = list(timelines)
    fig, axes = plt.subplots(
        len(routers), 1, figsize=(8, 1.9 * len(routers) + 0.6), sharex=True, squeeze=False
    )
    for ax, router in zip(axes[:, 0], routers, strict=True):
        timeline = timelines[router]
        samples = timeline["samples"]
        if samples:
            pods = [p["pod"] for p in samples[0]["pods"]]
            times = [s["t"] for s in samples]
            for i, pod in enumerate(pods):
                load = [s["pods"][i]["running"] + s["pods"][i]["waiting"] for s in samples]
                ax.plot(times, load, linewidth=0.9, label=pod)
        for boundary in timeline["rungs"][1:]:
            ax.axvline(boundary, color="grey", linewidth=0.6, linestyle=":")
        ax.set_ylabel("in engine")
        ax.set_title(router, fontsize=9, loc="left")
    axes[0, 0].legend(fontsize=7, ncol=8, loc="upper left")
    axes[-1, 0].set_xlabel("seconds since the router's run started (dotted: next load step)")
    fig.suptitle(f"{workload}: requests per pod (running + waiting) over time", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
