"""Prometheus `/metrics` for one simulated pod, named and labelled as vLLM's.

Two sources, one exposition:

* **State**, read from the engine's `EngineSnapshot` at scrape time by a custom collector, so a
  scrape sees one consistent instant of the engine (running, waiting and KV usage come from the
  same snapshot): `vllm:num_requests_running`, `vllm:num_requests_waiting`,
  `vllm:kv_cache_usage_perc` and its older name `vllm:gpu_cache_usage_perc`,
  `vllm:lora_requests_info`, `vllm:cache_config_info`, and the engine's cumulative counters
  `vllm:prefix_cache_queries_total`, `vllm:prefix_cache_hits_total`, `vllm:prompt_tokens_total`,
  `vllm:generation_tokens_total`, `vllm:num_preemptions_total`.
* **Requests**, recorded by the server as each one ends (`PodMetrics.record`):
  `vllm:request_success_total{finished_reason}` (vLLM's label name; `abort` counts requests the
  client gave up on), and histograms of TTFT, time per output token and inter-token latency (each
  gap between two tokens, as vLLM observes them), e2e latency, queue time, and inference, prefill
  and decode time, with vLLM's bucket boundaries. All times are engine-clock (simulated) seconds.

Labels are vLLM's: `model_name` and `engine` (the DP rank) on the gauges, counters and
histograms; `vllm:lora_requests_info` carries `running_lora_adapters`, `waiting_lora_adapters`
(comma-joined) and `max_lora`, with the scrape's Unix time as value, as vLLM sets it.

Cost: the server records on the event loop, so histograms are `igw.common.telemetry.hot`'s (no
locks). The request families are rendered again only after a request has ended; the state
families, a dozen lines, are rendered at every scrape. An EPP scrapes each pod every 50 ms, so
this matters for a fleet.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from igw.common.telemetry import hot
from igw.sim.engine.api import EngineSnapshot, RequestTimings

__all__ = ["FINISH_REASONS", "PodMetrics"]

FINISH_REASONS: Final = ("stop", "length", "abort")

_Labels = tuple[tuple[str, ...], tuple[str, ...]]
"""(label names, this pod's values)."""

# vLLM's bucket boundaries (vllm/v1/metrics/loggers.py).
_TTFT_BUCKETS: Final = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
_TOKEN_BUCKETS: Final = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
_REQUEST_BUCKETS: Final = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip


class _Histogram:
    """One vLLM histogram of this pod: `igw.common.telemetry.hot`'s, with the pod's labels."""

    __slots__ = ("_metric", "observe")

    def __init__(self, name: str, doc: str, bounds: Sequence[float], labels: _Labels) -> None:
        self._metric = hot.Histogram(name, doc, labels[0], buckets=bounds, registry=None)
        self.observe = self._metric.labels(*labels[1]).observe

    def families(self) -> Iterable[Metric]:
        return self._metric.collect()


class PodMetrics:
    """One pod's metrics and its own registry; `render()` is the `/metrics` body."""

    def __init__(
        self, snapshot: Callable[[], EngineSnapshot], *, model_name: str, engine: int = 0
    ) -> None:
        self._labels = ("model_name", "engine")
        self._values = (model_name, str(engine))
        self._success = dict.fromkeys(FINISH_REASONS, 0)
        labels = (self._labels, self._values)

        def hist(name: str, doc: str, bounds: Sequence[float]) -> _Histogram:
            return _Histogram(name, doc, bounds, labels)

        self._ttft = hist("vllm:time_to_first_token_seconds", "Time to first token.", _TTFT_BUCKETS)
        self._tpot = hist(
            "vllm:time_per_output_token_seconds", "Time per output token.", _TOKEN_BUCKETS
        )
        self._itl = hist("vllm:inter_token_latency_seconds", "Inter-token latency.", _TOKEN_BUCKETS)
        self._e2e = hist(
            "vllm:e2e_request_latency_seconds", "E2e request latency.", _REQUEST_BUCKETS
        )
        self._queue = hist(
            "vllm:request_queue_time_seconds", "Time spent in WAITING phase.", _REQUEST_BUCKETS
        )
        self._inference = hist(
            "vllm:request_inference_time_seconds", "Time spent in RUNNING phase.", _REQUEST_BUCKETS
        )
        self._prefill = hist(
            "vllm:request_prefill_time_seconds", "Time spent in PREFILL phase.", _REQUEST_BUCKETS
        )
        self._decode = hist(
            "vllm:request_decode_time_seconds", "Time spent in DECODE phase.", _REQUEST_BUCKETS
        )
        self._state = CollectorRegistry(auto_describe=False)
        self._state.register(_StateCollector(snapshot, self._labels, self._values))
        self._requests = CollectorRegistry(auto_describe=False)
        self._requests.register(_RequestsCollector(self._request_families))
        self._requests_text: bytes | None = None

    def record(self, timings: RequestTimings, token_times: Sequence[float], reason: str) -> None:
        """A request has ended: `reason` is its finish reason, or "abort" if it was cancelled."""
        self._success[reason] = self._success.get(reason, 0) + 1
        self._requests_text = None
        if reason == "abort" or timings.first_token is None or timings.finished is None:
            return
        arrival, first, finished = timings.arrival, timings.first_token, timings.finished
        scheduled = arrival if timings.scheduled is None else timings.scheduled
        self._ttft.observe(first - arrival)
        self._e2e.observe(finished - arrival)
        self._queue.observe(scheduled - arrival)
        self._inference.observe(finished - scheduled)
        self._prefill.observe(first - scheduled)
        self._decode.observe(finished - first)
        for earlier, later in itertools.pairwise(token_times):
            self._tpot.observe(later - earlier)
            self._itl.observe(later - earlier)

    def render(self) -> bytes:
        if self._requests_text is None:
            self._requests_text = generate_latest(self._requests)
        return generate_latest(self._state) + self._requests_text

    def _request_families(self) -> Iterable[Metric]:
        success = CounterMetricFamily(
            "vllm:request_success",
            "Count of successfully processed requests.",
            labels=(*self._labels, "finished_reason"),
        )
        for reason, count in self._success.items():
            success.add_metric((*self._values, reason), count)
        yield success
        for histogram in (
            self._ttft,
            self._tpot,
            self._itl,
            self._e2e,
            self._queue,
            self._inference,
            self._prefill,
            self._decode,
        ):
            yield from histogram.families()


class _RequestsCollector(Collector):
    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families()


class _StateCollector(Collector):
    """Reads one engine snapshot per scrape and renders every state family from it."""

    def __init__(
        self,
        snapshot: Callable[[], EngineSnapshot],
        labels: Sequence[str],
        values: Sequence[str],
    ) -> None:
        self._snapshot, self._labels, self._values = snapshot, labels, values

    def collect(self) -> Iterable[Metric]:
        snap = self._snapshot()
        gauge, counter = self._gauge, self._counter
        yield gauge(
            "vllm:num_requests_running", "Requests in model execution batches.", snap.running
        )
        yield gauge("vllm:num_requests_waiting", "Requests waiting to be processed.", snap.waiting)
        usage = snap.kv_cache_usage
        yield gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent.", usage)
        yield gauge("vllm:gpu_cache_usage_perc", "Deprecated: vllm:kv_cache_usage_perc.", usage)
        queries, hits = snap.prefix_cache_queries, snap.prefix_cache_hits
        yield counter("vllm:prefix_cache_queries", "Prefix cache queries, in tokens.", queries)
        yield counter("vllm:prefix_cache_hits", "Prefix cache hits, in tokens.", hits)
        yield counter("vllm:prompt_tokens", "Prefill tokens processed.", snap.prompt_tokens)
        generated = snap.generation_tokens
        yield counter("vllm:generation_tokens", "Generation tokens processed.", generated)
        yield counter("vllm:num_preemptions", "Preemptions from the engine.", snap.preemptions)
        yield _lora_info(snap)
        yield _cache_config_info(snap, self._values[1])

    def _gauge(self, name: str, doc: str, value: float) -> Metric:
        family = GaugeMetricFamily(name, doc, labels=self._labels)
        family.add_metric(self._values, value)
        return family

    def _counter(self, name: str, doc: str, value: float) -> Metric:
        family = CounterMetricFamily(name, doc, labels=self._labels)
        family.add_metric(self._values, value)
        return family


def _lora_info(snap: EngineSnapshot) -> Metric:
    family = GaugeMetricFamily(
        "vllm:lora_requests_info",
        "Running stats on lora requests.",
        labels=("max_lora", "waiting_lora_adapters", "running_lora_adapters"),
    )
    values = (str(snap.max_loras), ",".join(snap.waiting_loras), ",".join(snap.running_loras))
    family.add_metric(values, time.time())
    return family


def _cache_config_info(snap: EngineSnapshot, engine: str) -> Metric:
    family = GaugeMetricFamily(
        "vllm:cache_config_info",
        "Information of the LLMEngine CacheConfig.",
        labels=("block_size", "num_gpu_blocks", "engine"),
    )
    family.add_metric((str(snap.block_size), str(snap.num_gpu_blocks), engine), 1.0)
    return family
