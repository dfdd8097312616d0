"""Min-max normalisation shared by the load scorers."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["inverted_min_max"]


def inverted_min_max(values: Sequence[float]) -> list[float]:
    """`(max - v) / (max - min)`: the least loaded scores 1.0, the most 0.0; all equal -> 1.0."""
    if not values:
        return []
    low, high = min(values), max(values)
    if high == low:
        return [1.0] * len(values)
    span = high - low
    return [(high - v) / span for v in values]
