"""The named profile's acceptance (issue 14), judged from the lab's rows like `bench.lab.checks`.

For the profile's router (`igw-learned`, the `learned-latency` profile) on every workload run:
its top step's p90 TTFT within 15 % of the omniscient router's, never worse than least-request
at any step (a tie within `report.TIE` counts as not worse, as the run-to-run noise of one
step is about that), and on `prefix-high` still at least 5x better than round-robin. Upstream's
default profile (`igw`) is reported beside it, judged by the same bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.lab import report

__all__ = ["PROFILE_ROUTER", "verdicts"]

PROFILE_ROUTER = "igw-learned"
DEFAULT_ROUTER = "igw"


def _p90(rows: Sequence[dict[str, Any]], workload: str, router: str, rung: int) -> float | None:
    for r in rows:
        if (r["workload"], r["router"], r["rung"]) == (workload, router, rung):
            value: float | None = r["figures"]["ttft_p90"]
            return value
    return None


def _vs_omniscient(rows: Sequence[dict[str, Any]], workload: str, top: int) -> list[str]:
    lines = []
    omniscient = _p90(rows, workload, "omniscient", top)
    for router in (PROFILE_ROUTER, DEFAULT_ROUTER):
        mine = _p90(rows, workload, router, top)
        if mine is None or not omniscient:
            continue
        ratio = mine / omniscient
        verdict = "met" if ratio <= 1 + report.WITHIN_OMNISCIENT else "NOT met"
        lines.append(
            f"| {workload}, top load: {router} p90 TTFT / omniscient | {ratio:.2f}x "
            f"({mine:,.0f} vs {omniscient:,.0f} ms) | <= {1 + report.WITHIN_OMNISCIENT:.2f}x "
            f"| {verdict} |"
        )
    return lines


def _vs_least_request(rows: Sequence[dict[str, Any]], workload: str, steps: int) -> list[str]:
    worse = []
    compared = 0
    for rung in range(steps):
        mine = _p90(rows, workload, PROFILE_ROUTER, rung)
        theirs = _p90(rows, workload, "least-request", rung)
        if mine is None or theirs is None:
            continue
        compared += 1
        if mine > theirs * (1 + report.TIE):
            worse.append(f"step {rung + 1}: {mine:,.0f} vs {theirs:,.0f} ms")
    if not compared:
        return []
    verdict = "met" if not worse else "NOT met"
    measured = "; ".join(worse) if worse else f"not worse at {compared} of {compared} steps"
    line = (
        f"| {workload}, every step: {PROFILE_ROUTER} p90 TTFT <= least-request's (+5 %) "
        f"| {measured} | never worse | {verdict} |"
    )
    return [line]


def verdicts(rows: Sequence[dict[str, Any]], workloads: Sequence[str], top: int) -> list[str]:
    """The acceptance table for the profile's router, or nothing when it did not run."""
    if not any(r["router"] == PROFILE_ROUTER for r in rows):
        return []
    lines = ["| check | measured | target | verdict |", "| --- | --- | --- | --- |"]
    rr = _p90(rows, "prefix-high", "round-robin", top)
    mine = _p90(rows, "prefix-high", PROFILE_ROUTER, top)
    if rr and mine:
        ratio = rr / mine
        verdict = "met" if ratio >= report.TTFT_RATIO_VS_RR else "NOT met"
        lines.append(
            f"| prefix-high, top load: round-robin p90 TTFT / {PROFILE_ROUTER} | {ratio:.1f}x "
            f"| >= {report.TTFT_RATIO_VS_RR:.0f}x | {verdict} |"
        )
    for workload in workloads:
        lines += _vs_omniscient(rows, workload, top)
        lines += _vs_least_request(rows, workload, top + 1)
    return lines
