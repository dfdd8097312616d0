"""The lab's verdicts from its rows: DESIGN.md §6's targets, and why the omniscient router lost.

A row is one (workload, router, load step) as `bench.lab.cli` records it: `figures` (TTFT
percentiles, hit rate, affinity ...) and `outcomes` (one per request). `top` is the index of the
highest load step, where the targets are judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.lab import report

__all__ = ["best_rival", "findings", "moved_off_home", "verdicts"]


def _find(
    rows: Sequence[dict[str, Any]], workload: str, router: str, rung: int
) -> dict[str, Any] | None:
    for r in rows:
        if (r["workload"], r["router"], r["rung"]) == (workload, router, rung):
            return r
    return None


def best_rival(
    rows: Sequence[dict[str, Any]], workload: str, top: int
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(the omniscient router's row, the best other router's) at step `top`, by p90 TTFT."""
    at_top = [r for r in rows if r["workload"] == workload and r["rung"] == top]
    at_top = [r for r in at_top if r["figures"]["ttft_p90"] is not None]
    omniscient = next((r for r in at_top if r["router"] == "omniscient"), None)
    others = [r for r in at_top if r["router"] != "omniscient"]
    if omniscient is None or not others:
        return None
    return omniscient, min(others, key=lambda r: r["figures"]["ttft_p90"])


def verdicts(rows: Sequence[dict[str, Any]], workloads: Sequence[str], top: int) -> list[str]:
    """The DESIGN.md §6 targets and the omniscient router's own check, met or not."""
    lines = ["| check | measured | target | verdict |", "| --- | --- | --- | --- |"]
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
    for workload in workloads:
        pair = best_rival(rows, workload, top)
        if pair is None:
            continue
        row, best = pair
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


def findings(rows: Sequence[dict[str, Any]], workloads: Sequence[str], top: int) -> list[str]:
    """For each workload whose top step the omniscient router does not win or tie: the
    figures that say why, side by side with the router that did better."""
    lines: list[str] = []
    for workload in workloads:
        pair = best_rival(rows, workload, top)
        if pair is None:
            continue
        omniscient, best = pair
        mine, theirs = omniscient["figures"], best["figures"]
        if mine["ttft_p90"] <= theirs["ttft_p90"] * (1 + report.TIE):
            continue
        lines += [
            (
                f"- **{workload}**: at the top step the omniscient router's p90 TTFT is "
                f"{mine['ttft_p90']:,.0f} ms, `{best['router']}`'s {theirs['ttft_p90']:,.0f} ms. "
                f"Prefix-cache hit rate {report.as_pct(mine['hit_rate'])} vs "
                f"{report.as_pct(theirs['hit_rate'])}; group affinity "
                f"{report.as_pct(mine['affinity'])} vs {report.as_pct(theirs['affinity'])}; "
                f"requests sent away from a pod that had served their group: "
                f"{moved_off_home(rows, workload, 'omniscient', top)} vs "
                f"{moved_off_home(rows, workload, best['router'], top)} of {mine['sent']}; "
                f"TTFT p50 {report.as_ms(mine['ttft_p50'])} vs "
                f"{report.as_ms(theirs['ttft_p50'])} ms."
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
