"""What every EPP sub-benchmark shares: its result section, Markdown tables, percentiles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Section:
    """One sub-benchmark's output: a title, its Markdown body, and what it was run with."""

    title: str
    body: str
    settings: str
    summary: tuple[str, str, str, str]
    """The headline: figure, measured, target, verdict (a row of the run's summary table)."""
    more: tuple[tuple[str, str, str, str], ...] = ()
    """Further headline rows, for a sub-benchmark with more than one target."""


def table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [columns, ["---"] * len(columns), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def verdict(measured: float, target: float) -> str:
    """`met` when `measured` is at most `target`."""
    return "met" if measured <= target else "NOT met"


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (`values` need not be sorted)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[index]
