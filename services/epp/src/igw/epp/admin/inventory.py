"""`ListEndpoints` without the wire: each endpoint's metrics, age, staleness and in-flight load.

Staleness is judged as the pool gauges judge it: metrics never scraped, or scraped longer ago than
the EPP's `--metrics-staleness-threshold`, are stale. In-flight counts come from a plugin that
tracks them (`inflight-load-producer`, `concurrency-detector`); the default configuration has
none, and then every count is 0 and `in_flight_tracked` says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from igw.epp.endpoints import Endpoint, EndpointSource, Metrics
from igw.epp.scheduling.attributes import InFlightLoad

__all__ = ["EndpointReport", "InFlightReader", "Inventory", "find_inflight_reader"]


@runtime_checkable
class InFlightReader(Protocol):
    """Requests the EPP has sent to an endpoint and not yet seen complete."""

    def load(self, endpoint: str) -> InFlightLoad: ...


@dataclass(frozen=True, slots=True)
class EndpointReport:
    endpoint: Endpoint
    metrics: Metrics
    age_s: float | None
    """Seconds since the last scrape; None when never scraped."""
    stale: bool
    in_flight: InFlightLoad


@dataclass(frozen=True, slots=True)
class Inventory:
    """The pool as `ListEndpoints` reports it."""

    endpoints: tuple[EndpointReport, ...]
    staleness_threshold_s: float
    in_flight_tracked: bool

    @classmethod
    def collect(
        cls,
        source: EndpointSource,
        *,
        staleness_threshold_s: float,
        in_flight: InFlightReader | None,
        now: float,
    ) -> Inventory:
        zero = InFlightLoad(0, 0)
        reports = []
        for state in source.endpoints():
            age = state.age(now)
            known = math.isfinite(age)
            reports.append(
                EndpointReport(
                    endpoint=state.endpoint,
                    metrics=state.metrics,
                    age_s=max(0.0, age) if known else None,
                    stale=not known or age > staleness_threshold_s,
                    in_flight=in_flight.load(state.endpoint.name) if in_flight else zero,
                )
            )
        return cls(tuple(reports), staleness_threshold_s, in_flight is not None)


def find_inflight_reader(plugins: Mapping[str, object]) -> InFlightReader | None:
    """The in-flight tracker of the first configured plugin that keeps one, if any."""
    for plugin in plugins.values():
        tracker = getattr(plugin, "tracker", None)
        if isinstance(tracker, InFlightReader):
            return tracker
    return None
