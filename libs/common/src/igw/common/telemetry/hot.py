"""Counters, gauges and histograms for the per-request hot path, exposed through prometheus_client.

prometheus_client's metrics are built for many writer threads: every `inc` and `observe` takes a
lock, `observe` walks the bucket list in Python and bumps each bucket through its own locked
value, and `labels()` validates and converts its arguments on every call. Measured here, a
histogram observation costs ~1.3 µs and a `labels()` lookup ~1.1 µs; the EPP makes about fifteen
of each per request, a fifth of its own Python time. igw's writers are one event loop, so these
classes keep plain Python numbers instead: a child is found by one dict lookup on the label
tuple, an observation is one `bisect` and one list increment (~0.2 µs).

Reads happen on another thread: the metrics server's `collect()` copies the numbers while the
loop may be writing them. With a single writer no update is ever lost; a scrape may see a
histogram's sum from just before or after one of its buckets, which Prometheus tolerates (the
count is derived from the buckets it read, so `_count` always equals the `+Inf` bucket).

Names, help text, label names and buckets are given as to prometheus_client, and the exposition
is the same except for the `_created` series, which upstream's Go metrics do not have either.
Register each metric on the service's own registry; the registry refuses duplicate names as it
does for prometheus_client's own metrics.

Bounded label sets: some label values come from clients (the model a request names, its
fairness id), so a client sending a new one per request would grow a family, its memory and every
scrape, without end. A family keeps at most `max_series` label sets (`MAX_SERIES` by default);
past that, new label sets are counted in one series whose every value is `OVERFLOW`, and a
warning is logged once per family. Upstream's Go metrics have no such bound.
"""

from __future__ import annotations

import itertools
import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from igw.common.telemetry.logging import get_logger

__all__ = [
    "MAX_SERIES",
    "OVERFLOW",
    "Counter",
    "CounterChild",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
]

MAX_SERIES = 5000
"""Label sets a family keeps before new ones go to the `OVERFLOW` series (module docstring)."""
OVERFLOW = "__overflow__"
_log = get_logger(__name__)

_Child = TypeVar("_Child", "CounterChild", "GaugeChild", "HistogramChild")

_bound_text: Callable[[float], str] = floatToGoString
"""A bucket's `le` exactly as prometheus_client writes it (Go's float formatting)."""


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters only go up: inc() takes a non-negative amount")
        self.value += amount


class GaugeChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = float(value)


class HistogramChild:
    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        """Per bucket, not cumulative; the last one is (highest bound, +Inf)."""
        self.sum = 0.0

    def observe(self, value: float) -> None:
        # A value equal to a bound belongs to that bucket (`le`), as bisect_left finds it.
        self.counts[bisect_left(self._bounds, value)] += 1
        self.sum += value


class _Metric(Collector, Generic[_Child]):
    """A named family with label names; children are made on first use of their label values."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        registry: CollectorRegistry | None,
        max_series: int = MAX_SERIES,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.max_series = max_series
        self._series_count = 0
        self._children: dict[tuple[str, ...], _Child] = {}
        self._unlabelled: _Child | None = None
        if not self.labelnames:
            self._unlabelled = self._children[()] = self._new_child()
        if registry is not None:
            registry.register(self)

    def _new_child(self) -> _Child:
        raise NotImplementedError

    def labels(self, *values: str) -> _Child:
        """The child for these label values, in `labelnames` order (made on first use)."""
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(
                    f"{self.name}: {len(self.labelnames)} label values expected "
                    f"({', '.join(self.labelnames)}), got {len(values)}"
                )
            key = tuple(str(v) for v in values)
            child = self._children.get(key)
            if child is None:
                if self._series_count >= self.max_series:
                    return self._overflow()  # not cached: the family's size stays bounded
                child = self._children[key] = self._new_child()
                self._series_count += 1
            self._children[values] = child
        return child

    def _overflow(self) -> _Child:
        """The one series every label set past `max_series` is counted in (module docstring)."""
        key = (OVERFLOW,) * len(self.labelnames)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
            _log.warning(
                "metric label sets at their bound; further ones are counted as overflow",
                metric=self.name, max_series=self.max_series, label_value=OVERFLOW,
            )  # fmt: skip
        return child

    def _only(self) -> _Child:
        if self._unlabelled is None:
            raise ValueError(f"{self.name} has labels {self.labelnames}: use labels(...) first")
        return self._unlabelled

    def _series(self) -> list[tuple[tuple[str, ...], _Child]]:
        """Each child once, under its string label values (aliases made by `labels` skipped)."""
        # A copy first: the loop thread may add a child while the metrics thread reads.
        items = list(self._children.items())
        return [(key, child) for key, child in items if all(type(v) is str for v in key)]

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def _family(self) -> Metric:
        raise NotImplementedError


class Counter(_Metric[CounterChild]):
    """As `prometheus_client.Counter` (name without `_total`; exposed with it)."""

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    def _family(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        for key, child in self._series():
            family.add_metric(key, child.value)
        return [family]


class Gauge(_Metric[GaugeChild]):
    """As `prometheus_client.Gauge`, without `set_function` (use prometheus_client's for that)."""

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def inc(self, amount: float = 1.0) -> None:
        self._only().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self._only().dec(amount)

    def set(self, value: float) -> None:
        self._only().set(value)

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        for key, child in self._series():
            family.add_metric(key, child.value)
        return [family]


class Histogram(_Metric[HistogramChild]):
    """As `prometheus_client.Histogram`: `buckets` are the finite upper bounds, ascending."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry | None,
        max_series: int = MAX_SERIES,
    ) -> None:
        bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        if not bounds or any(a >= b for a, b in itertools.pairwise(bounds)):
            raise ValueError(f"{name}: buckets must be non-empty and strictly ascending")
        self.bounds = bounds
        super().__init__(name, documentation, labelnames, registry=registry, max_series=max_series)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def observe(self, value: float) -> None:
        child = self._unlabelled  # `_only()` inlined: unlabelled histograms time every request
        if child is None:
            self._only()  # raises, naming the labels
            return
        child.observe(value)

    def _family(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        edges = [_bound_text(b) for b in self.bounds] + ["+Inf"]
        for key, child in self._series():
            total, cumulative = 0, []
            for edge, count in zip(edges, list(child.counts), strict=True):
                total += count
                cumulative.append((edge, float(total)))
            family.add_metric(key, cumulative, child.sum)
        return [family]
