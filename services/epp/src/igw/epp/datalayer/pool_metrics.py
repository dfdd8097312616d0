"""The pool gauges of upstream §7, computed from the datastore when Prometheus scrapes.

`PoolMetricsCollector` is a custom prometheus-client collector: each `collect()` reads one
snapshot from an `EndpointSource` and keeps the endpoints whose metrics are fresh (age at most
`staleness_threshold_s`, upstream's `--metrics-staleness-threshold`, 2 s). Upstream recomputes
these gauges every 5 s (`--refresh-prometheus-metrics-interval`); reading at scrape time is never
older than that. With no fresh endpoint, `inference_pool_ready_pods` is 0 and the averages are
absent (no data) rather than a misleading 0. `collect()` may run on any thread: it only reads
the snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from igw.epp.endpoints import EndpointSource

__all__ = ["PoolMetricsCollector"]


class PoolMetricsCollector(Collector):
    """`inference_pool_*` gauges for one pool (label `name`)."""

    def __init__(
        self,
        pool_name: str,
        source: EndpointSource,
        *,
        staleness_threshold_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool_name
        self._source = source
        self._threshold_s = staleness_threshold_s
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        now = self._clock()
        fresh = [s for s in self._source.endpoints() if s.age(now) <= self._threshold_s]
        averages = (
            ("inference_pool_average_kv_cache_utilization",
             "[ALPHA] The average kv cache utilization for an inference server pool.",
             [s.metrics.kv_cache_usage for s in fresh]),
            ("inference_pool_average_queue_size",
             "[ALPHA] The average number of requests pending in the model server queue.",
             [float(s.metrics.waiting) for s in fresh]),
            ("inference_pool_average_running_requests",
             "[ALPHA] The average number of requests currently running on the model servers.",
             [float(s.metrics.running) for s in fresh]),
        )  # fmt: skip
        for name, documentation, values in averages:
            family = GaugeMetricFamily(name, documentation, labels=["name"])
            if values:
                family.add_metric([self._pool], sum(values) / len(values))
            yield family
        ready = GaugeMetricFamily(
            "inference_pool_ready_pods",
            "[ALPHA] The number of ready pods (endpoints with fresh metrics) in the pool.",
            labels=["name"],
        )
        ready.add_metric([self._pool], len(fresh))
        yield ready
        per_pod = GaugeMetricFamily(
            "inference_pool_per_pod_queue_size",
            "[ALPHA] The total number of requests pending in the model server queue per pod.",
            labels=["name", "model_server_pod"],
        )
        for state in fresh:
            per_pod.add_metric([self._pool, state.endpoint.name], state.metrics.waiting)
        yield per_pod
