"""The named profile's acceptance table: what a reader of the lab's report is told."""

from __future__ import annotations

from typing import Any

from bench.lab import acceptance


def row(workload: str, router: str, rung: int, p90: float) -> dict[str, Any]:
    return {"workload": workload, "router": router, "rung": rung, "figures": {"ttft_p90": p90}}


def test_met_and_not_met_are_told_apart() -> None:
    rows = [
        row("prefix-high", "round-robin", 1, 3000.0),
        row("prefix-high", "omniscient", 1, 180.0),
        row("prefix-high", "igw-learned", 1, 190.0),
        row("prefix-high", "igw", 1, 200.0),
        row("slow-pod", "omniscient", 1, 1000.0),
        row("slow-pod", "igw-learned", 1, 1300.0),
        row("slow-pod", "least-request", 0, 400.0),
        row("slow-pod", "igw-learned", 0, 500.0),
        row("slow-pod", "least-request", 1, 2000.0),
    ]
    table = "\n".join(acceptance.verdicts(rows, ["prefix-high", "slow-pod"], top=1))
    assert "round-robin p90 TTFT / igw-learned | 15.8x | >= 5x | met |" in table
    assert "| prefix-high, top load: igw-learned p90 TTFT / omniscient | 1.06x" in table
    assert "| prefix-high, top load: igw p90 TTFT / omniscient | 1.11x" in table
    assert "| slow-pod, top load: igw-learned p90 TTFT / omniscient | 1.30x" in table
    assert "NOT met" in table.split("slow-pod, top load: igw-learned")[1].splitlines()[0]
    assert "step 1: 500 vs 400 ms | never worse | NOT met |" in table


def test_nothing_is_judged_when_the_profile_did_not_run() -> None:
    assert acceptance.verdicts([row("sharegpt", "igw", 0, 1.0)], ["sharegpt"], top=0) == []
