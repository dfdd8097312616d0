"""The BBR's Prometheus metrics, with upstream GIE's names and labels (subsystem `bbr`).

Each `BbrMetrics` owns its registry, so tests and several servers in one process never share
counters. What is recorded per request uses `igw.common.telemetry.hot` (no locks on the hot path).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from igw.common.telemetry import hot

__all__ = ["BbrMetrics"]

# Plugins take microseconds; the upper buckets catch a slow decode of a very large body.
_PLUGIN_BUCKETS = (
    1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0,
)  # fmt: skip


class BbrMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, version: str = "dev") -> None:
        self.registry = registry or CollectorRegistry()
        self.info = Gauge(
            "bbr_info", "General information of the current build.", ["commit", "build_ref"],
            registry=self.registry,
        )  # fmt: skip
        self.info.labels(version, version).set(1)
        self.success = hot.Counter(
            "bbr_success", "Requests whose body was processed successfully.",
            registry=self.registry,
        )  # fmt: skip
        self.body_field_not_found = hot.Counter(
            "bbr_body_field_not_found", "Requests whose body lacked the configured field.",
            ["field"], registry=self.registry,
        )  # fmt: skip
        self.body_field_empty = hot.Counter(
            "bbr_body_field_empty", "Requests whose configured body field was empty.",
            ["field"], registry=self.registry,
        )  # fmt: skip
        self.plugin_duration = hot.Histogram(
            "bbr_plugin_duration_seconds", "Time each plugin took per request.",
            ["extension_point", "plugin_type", "plugin_name"],
            buckets=_PLUGIN_BUCKETS, registry=self.registry,
        )  # fmt: skip
