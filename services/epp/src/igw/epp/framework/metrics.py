"""The scheduler's Prometheus metrics, with upstream GIE's names, labels and buckets (§7).

Each `SchedulerMetrics` owns or is given its registry, never the global one, so tests and several
schedulers in one process never share series. Histograms observed per request are
`igw.common.telemetry.hot` ones; the index-size gauge is computed at scrape time.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge

from igw.common.telemetry import hot

__all__ = ["LATENCY_BUCKETS", "RequestLatencyMetrics", "SchedulerMetrics"]

LATENCY_BUCKETS = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
"""Upstream's buckets for both the plugin and the end-to-end scheduling histograms."""
_HIT_RATIO_BUCKETS = tuple(round(0.1 * i, 1) for i in range(11))
_HIT_BYTES_BUCKETS = (0, 1024, 2048, 4096, 8192, 16384, 32768, 65536)
GENERAL_LATENCY_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20,
    30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600,
)  # fmt: skip
"""Upstream's `generalLatencyBuckets` (TTFT and predicted-TTFT histograms)."""
TPOT_BUCKETS = (
    0.0005, 0.00205, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.125, 0.15, 0.2, 0.3, 0.4, 0.5,
    0.6, 0.8, 1, 1.5, 2, 3, 4.5, 6, 12, 18, 24, 30, 36, 48, 60, 90, 120, 180, 270, 360,
)  # fmt: skip
"""Upstream's `tpotBuckets` (the TPOT histogram)."""
_OBJECTIVE_LABELS = ["model_name", "target_model_name"]


class SchedulerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.plugin_duration = hot.Histogram(
            "inference_extension_plugin_duration_seconds",
            "[ALPHA] Plugin processing latency distribution in seconds for each extension point, "
            "plugin type and plugin name.",
            ["extension_point", "plugin_type", "plugin_name"],
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.scheduler_e2e = hot.Histogram(
            "inference_extension_scheduler_e2e_duration_seconds",
            "[ALPHA] End-to-end scheduling latency distribution in seconds.",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.prefix_indexer_size = Gauge(
            "inference_extension_prefix_indexer_size",
            "[ALPHA] Size of the prefix indexer.", registry=self.registry,
        )  # fmt: skip
        self.prefix_indexer_hit_ratio = hot.Histogram(
            "inference_extension_prefix_indexer_hit_ratio",
            "[ALPHA] Ratio of prefix length matched to total prefix length in the cache lookup.",
            buckets=_HIT_RATIO_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.prefix_indexer_hit_bytes = hot.Histogram(
            "inference_extension_prefix_indexer_hit_bytes",
            "[ALPHA] Length of the prefix match in number of bytes in the cache lookup.",
            buckets=_HIT_BYTES_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self._index_sizes: list[Callable[[], int]] = []
        self.prefix_indexer_size.set_function(self._total_index_size)
        self._predicted_ttft: hot.Histogram | None = None
        self._latency: RequestLatencyMetrics | None = None

    def predicted_ttft(self) -> hot.Histogram:
        """`inference_objective_request_predicted_ttft_seconds` (model_name, target_model_name),
        registered on first use: only a profile that predicts TTFT exports it."""
        if self._predicted_ttft is None:
            self._predicted_ttft = hot.Histogram(
                "inference_objective_request_predicted_ttft_seconds",
                "[ALPHA] Inference model Predicted TTFT distribution in seconds for each model "
                "and target model.",
                ["model_name", "target_model_name"],
                buckets=GENERAL_LATENCY_BUCKETS, registry=self.registry,
            )  # fmt: skip
        return self._predicted_ttft

    def request_latency(self) -> RequestLatencyMetrics:
        """Upstream's measured-latency families, registered on first use: only a configuration
        with `request-latency-reporter` exports them."""
        if self._latency is None:
            self._latency = RequestLatencyMetrics(self.registry)
        return self._latency

    def add_prefix_index(self, size: Callable[[], int]) -> None:
        """Counts an index's entries into `inference_extension_prefix_indexer_size`."""
        self._index_sizes.append(size)

    def _total_index_size(self) -> float:
        return float(sum(size() for size in self._index_sizes))

    def plugin_timer(
        self, extension_point: str, plugin_type: str, plugin_name: str
    ) -> Callable[[float], None]:
        """The bound `observe` of one plugin's series: resolved once, at build time."""
        return self.plugin_duration.labels(extension_point, plugin_type, plugin_name).observe


class RequestLatencyMetrics:
    """What a request's client saw, with upstream's names, labels and buckets (§7): TTFT and TPOT
    histograms, the SLO violation counter (`type` is `ttft` or `tpot`, as upstream counts them)
    and upstream's consolidated `inference_objective_inference_request_metric` gauge."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.ttft = hot.Histogram(
            "inference_objective_request_ttft_seconds",
            "[ALPHA] Inference model TTFT distribution in seconds for each model and target model.",
            _OBJECTIVE_LABELS, buckets=GENERAL_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.tpot = hot.Histogram(
            "inference_objective_request_tpot_seconds",
            "[ALPHA] Inference model TPOT distribution in seconds for each model and target model.",
            _OBJECTIVE_LABELS, buckets=TPOT_BUCKETS, registry=registry,
        )  # fmt: skip
        self.slo_violations = hot.Counter(
            "inference_objective_request_slo_violation",
            "[ALPHA] Counter of SLO violations for each model, target model, and violation type.",
            [*_OBJECTIVE_LABELS, "type"], registry=registry,
        )  # fmt: skip
        self.gauge = hot.Gauge(
            "inference_objective_inference_request_metric",
            "[ALPHA] Consolidated gauge for various inference request metrics including TTFT, "
            "TPOT, SLOs, and prediction durations.",
            [*_OBJECTIVE_LABELS, "type"], registry=registry,
        )  # fmt: skip
