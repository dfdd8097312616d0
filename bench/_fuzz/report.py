"""A fuzz run's summary: Markdown that reads well in a terminal and in bench/results/fuzz.md."""

from __future__ import annotations

from bench._fuzz.run import RunResult

__all__ = ["summary"]

_SHOWN_FAILURES = 20


def _mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


def _rss_trace(result: RunResult, points: int = 10) -> list[str]:
    """RSS at about `points` evenly spaced moments of the run, to show it flat (or not)."""
    trace = result.rss_trace
    if len(trace) < points:
        return []
    step = len(trace) / points
    shown = [trace[min(len(trace) - 1, round((i + 1) * step) - 1)] for i in range(points)]
    cells = " | ".join(f"{ran:,}: {kib / 1024:.1f}" for ran, kib in shown)
    return ["", f"RSS (MiB) by streams run: {cells}"]


def summary(result: RunResult, command: str) -> str:
    """What ran, how each stream ended, what the process looked like after (module docstring)."""
    rate = result.ran / result.elapsed_s if result.elapsed_s else 0.0
    growth = result.growth_per_10k_kib
    rss = result.rss_kib
    verdict = "PASS" if result.ok else "FAIL"
    late = result.late_growth_per_10k_kib
    growth_text = "-" if growth is None else f"{growth:+.0f} KiB per 10k streams"
    if late is not None:
        growth_text += f" ({late:+.0f} KiB per 10k over the second half)"
    open_text = ", ".join(f"{k} = {v:g}" for k, v in result.open_requests.items())
    lines = [
        (
            f"### {result.service}: seed {result.seed}, {result.ran:,} of {result.count:,} "
            f"streams - {verdict}"
        ),
        "",
        f"`{command}`",
        "",
        f"- {result.elapsed_s:.1f} s, {rate:.0f} streams/s",
        (
            f"- RSS: {_mib(rss.get('start'))} at start, {_mib(rss.get('warm'))} after the "
            f"warm-up ({result.warmup:,} streams), {_mib(rss.get('end'))} at the end; growth "
            f"after warm-up: {growth_text}"
        ),
        (
            f"- open file descriptors: {result.fds.get('start', '-')} at start, "
            f"{result.fds.get('end', '-')} at the end"
        ),
        f"- open requests after the run: {open_text or 'none exported'}",
        "",
        "| outcome | streams |",
        "|---|---:|",
        *(f"| {kind} | {n:,} |" for kind, n in sorted(result.outcomes.items())),
        "",
        "| case kind | streams |",
        "|---|---:|",
        *(f"| {kind} | {n:,} |" for kind, n in sorted(result.case_kinds.items())),
    ]
    lines += _rss_trace(result)
    if result.grpc_details:
        lines += ["", "gRPC statuses, one example each (case index: message):", ""]
        lines += [
            f"- {kind}: case {index}: {detail}"
            for kind, (index, detail) in sorted(result.grpc_details.items())
        ]
    if result.servicer_exceptions:
        lines += [
            "",
            "Unexpected exceptions the service logged (streams: exception, last frame):",
            "",
        ]
        lines += [f"- {n}: {text}" for text, n in result.servicer_exceptions.most_common()]
    if result.failures or result.problems:
        lines += ["", "Failures (replay one with `--replay INDEX`):", ""]
        lines += [
            f"- case {f.index} ({f.case_kind}): {f.outcome}: {f.detail}"
            for f in result.failures[:_SHOWN_FAILURES]
        ]
        if len(result.failures) > _SHOWN_FAILURES:
            lines.append(f"- ... {len(result.failures) - _SHOWN_FAILURES} more")
        lines += [f"- {problem}" for problem in result.problems]
    return "\n".join(lines) + "\n"
