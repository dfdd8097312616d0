"""Flow control's Prometheus metrics, with upstream's names, labels, help texts and buckets (§7).

Registered on the EPP's registry with `igw.common.telemetry.hot` (one writer: the event loop).
The queue gauges go up when a request is queued and down when it leaves by any path (dispatch,
TTL, client gone, shutdown), so they return to 0 when the queues drain.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry

from igw.common.telemetry import hot

__all__ = ["FlowControlMetrics"]

_QUEUE_DURATION_BUCKETS: Final = (
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
)  # fmt: skip
_FAST_BUCKETS: Final = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
_QUEUE_LABELS: Final = ("fairness_id", "priority", "inference_pool", "model_name",
                        "target_model_name")  # fmt: skip
_PREFIX: Final = "inference_extension_flow_control_"


def _help(text: str) -> str:
    return f"[ALPHA] {text}"


class FlowControlMetrics:
    """Every flow-control series; one per EPP."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        self.queue_duration = hot.Histogram(
            f"{_PREFIX}request_queue_duration_seconds",
            _help("Distribution of total time requests spend in the Flow Control layer (from "
                  "enqueue to final outcome)."),
            ["fairness_id", "priority", "outcome", "inference_pool", "model_name",
             "target_model_name"],
            buckets=_QUEUE_DURATION_BUCKETS, registry=r,
        )  # fmt: skip
        self.enqueue_duration = hot.Histogram(
            f"{_PREFIX}request_enqueue_duration_seconds",
            _help("Distribution of time taken to enqueue requests into the Flow Control layer."),
            ["fairness_id", "priority", "outcome"], buckets=_FAST_BUCKETS, registry=r,
        )  # fmt: skip
        self.dispatch_cycle = hot.Histogram(
            f"{_PREFIX}dispatch_cycle_duration_seconds",
            _help("Distribution of time taken for each internal dispatch cycle in the Flow "
                  "Control layer."),
            [], buckets=_FAST_BUCKETS, registry=r,
        )  # fmt: skip
        self.queue_size = hot.Gauge(
            f"{_PREFIX}queue_size",
            _help("Current number of requests actively held in the Flow Control queue."),
            list(_QUEUE_LABELS), registry=r,
        )  # fmt: skip
        self.queue_bytes = hot.Gauge(
            f"{_PREFIX}queue_bytes",
            _help("Current total size in bytes of requests actively held in the Flow Control "
                  "queue."),
            list(_QUEUE_LABELS), registry=r,
        )  # fmt: skip
        self.pool_saturation = hot.Gauge(
            f"{_PREFIX}pool_saturation",
            _help("Current saturation level of the inference pool (0.0 = empty, 1.0 = fully "
                  "saturated)."),
            ["inference_pool"], registry=r,
        )  # fmt: skip
