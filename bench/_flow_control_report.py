"""The flow-control benchmark's figures, Markdown report and plot.

Percentiles are nearest rank (`bench.lab.report.pct`) over each group's successful requests; the
time to first token counts from the POST, so it includes any wait in the gateway. Statuses are
counted per group: 200, 429 (over a queue's capacity), 503 (queued past its TTL), anything else,
and requests still unanswered when the drain limit passed ("unfinished", cancelled).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench._load import Streamed
from bench.lab.report import as_ms, pct

__all__ = ["NEAR_IDLE_CORES", "figures", "markdown", "plot", "throughput", "verdicts"]

NEAR_IDLE_CORES = 0.05
"""The EPP with a full queue and a saturated pool may use at most this much more of a core than
when idle: the dispatcher waits for a change, it does not poll."""
_UNFINISHED = "not finished within the drain limit"


def figures(answers: Sequence[Streamed]) -> dict[str, Any]:
    """Counts by outcome and TTFT percentiles (ms) of one group of requests."""
    ok = [a for a in answers if a.ok]
    ttft = [a.ttft * 1000 for a in ok if a.ttft is not None]
    statuses = collections.Counter(a.status for a in answers if a.status and not a.ok)
    unfinished = sum(1 for a in answers if a.error == _UNFINISHED and a.status in (0, 200))
    other = len(answers) - len(ok) - statuses[429] - statuses[503] - unfinished
    return {
        "sent": len(answers),
        "ok": len(ok),
        "429": statuses[429],
        "503": statuses[503],
        "other": other,
        "unfinished": unfinished,
        "ttft_p50": pct(ttft, 50),
        "ttft_p90": pct(ttft, 90),
    }


def throughput(answers: Sequence[Streamed]) -> float:
    """Answers per second, from the first request's start to the last answer's end."""
    ends = [a.done for a in answers if a.ok and a.done is not None]
    return len(ends) / (max(ends) - min(a.started for a in answers)) if ends else 0.0


def _row(cells: Sequence[object]) -> str:
    return "| " + " | ".join(str(cell) for cell in cells) + " |"


def _table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    return [_row(columns), _row(["---"] * len(columns)), *(_row(r) for r in rows)]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _load_table(modes: Mapping[str, Mapping[str, Any]], key: str) -> list[str]:
    columns = ["flow control", key, "sent", "200", "429", "503", "other", "unfinished",
               "TTFT p50 ms", "TTFT p90 ms", "EPP queue time p90 s (bucket)"]  # fmt: skip
    rows = []
    for mode, run in modes.items():
        queue_p90 = run.get("queue_time_p90", {})
        for group, f in run[{"objective": "objectives", "class": "classes"}[key]].items():
            priority = run["priorities"].get(group.split("/")[0], "")
            rows.append([
                mode, group, f["sent"], f["ok"], f["429"], f["503"], f["other"],
                f["unfinished"], as_ms(f["ttft_p50"]), as_ms(f["ttft_p90"]),
                _seconds(queue_p90.get(str(priority))) if key == "objective" else "",
            ])  # fmt: skip
    return _table(columns, rows)


def _cpu_table(modes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    columns = ["flow control", "EPP CPU idle (cores)", "EPP CPU, pool saturated (cores)",
               "waiting in the EPP", "waiting in the engines", "pool saturation",
               "EPP queue after the clients left"]  # fmt: skip
    rows = []
    for mode, run in modes.items():
        hold = run["hold"]
        saturation = hold["saturation"]
        rows.append([
            mode, f"{hold['idle_cores']:.3f}", f"{hold['busy_cores']:.3f}",
            f"{hold['epp_queued']:.0f}", f"{hold['engine_waiting']:.0f}",
            "-" if saturation is None else f"{saturation:.2f}", f"{hold['queued_after']:.0f}",
        ])  # fmt: skip
    return _table(columns, rows)


def _ratio(off: float, on: float) -> str:
    return f"{off / on:.1f}x lower" if off >= on else f"{on / off:.1f}x higher"


def verdicts(modes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = []
    off, on = modes.get("off"), modes.get("on")
    if off and on:
        for objective in off["objectives"]:
            before, after = off["objectives"][objective], on["objectives"][objective]
            if before["ttft_p90"] and after["ttft_p90"]:
                lines.append(
                    f"- {objective}: p90 TTFT {as_ms(before['ttft_p90'])} ms with flow control "
                    f"off, {as_ms(after['ttft_p90'])} ms on "
                    f"({_ratio(before['ttft_p90'], after['ttft_p90'])}); answered "
                    f"{before['ok']}/{before['sent']} off, {after['ok']}/{after['sent']} on "
                    f"({after['429']} x 429 over capacity, {after['503']} x 503 past the TTL)."
                )
    for mode, run in modes.items():
        lines.append(f"- Throughput with flow control {mode}: {run['throughput']:.2f} answers/s.")
    if on:
        hold = on["hold"]
        extra = hold["busy_cores"] - hold["idle_cores"]
        verdict = "near idle" if extra <= NEAR_IDLE_CORES else "NOT near idle"
        lines.append(
            f"- EPP with {hold['epp_queued']:.0f} requests queued and the pool saturated: "
            f"{hold['busy_cores']:.3f} cores vs {hold['idle_cores']:.3f} idle "
            f"({extra:+.3f}; {verdict}, limit +{NEAR_IDLE_CORES})."
        )
    return lines


def markdown(
    modes: Mapping[str, Mapping[str, Any]], facts: Sequence[str], method: str, plot_name: str
) -> str:
    lines = [
        "# Flow control: off vs on, one overloaded fleet and one seeded load",
        "",
        *facts,
        "",
        "## Verdicts",
        "",
        *verdicts(modes),
        "",
        "## Per objective",
        "",
        *_load_table(modes, "objective"),
        "",
        "## Per client class (objective/tenant)",
        "",
        *_load_table(modes, "class"),
        "",
        "## EPP CPU with a full queue and a saturated pool",
        "",
        *_cpu_table(modes),
        "",
        f"![p90 TTFT per objective, and where requests wait]({plot_name})",
        "",
        "## Method",
        "",
        method,
        "",
    ]
    return "\n".join(lines)


def plot(modes: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    fig, (bars, timeline) = plt.subplots(1, 2, figsize=(12, 4.5))
    objectives = list(next(iter(modes.values()))["objectives"])
    width = 0.8 / len(modes)
    for i, (mode, run) in enumerate(modes.items()):
        values = [(run["objectives"][o]["ttft_p90"] or 0) / 1000 for o in objectives]
        xs = [x + i * width for x in range(len(objectives))]
        bars.bar(xs, values, width, label=f"flow control {mode}")
    bars.set_xticks([x + width * (len(modes) - 1) / 2 for x in range(len(objectives))])
    bars.set_xticklabels(objectives)
    bars.set_ylabel("TTFT p90 (s)")
    bars.set_title("p90 time to first token per objective")
    bars.legend()
    for mode, run in modes.items():
        samples = run["timeline"]
        times = [s["t"] for s in samples]
        timeline.plot(times, [s["engine_waiting"] for s in samples], label=f"{mode}: engines")
        if mode == "on":
            timeline.plot(times, [s["epp_queued"] for s in samples], label="on: EPP queues")
    timeline.set_xlabel("seconds since the load started")
    timeline.set_ylabel("requests waiting")
    timeline.set_title("where requests wait")
    timeline.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
