"""Pool gauges: averages over fresh endpoints, ready count, per-pod queue, read at scrape time."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from igw.epp.datalayer.pool_metrics import PoolMetricsCollector
from igw.epp.endpoints import Endpoint, EndpointState, Metrics

NOW = 100.0


class FixedSource:
    def __init__(self, states: Sequence[EndpointState]) -> None:
        self.states = states

    def endpoints(self) -> Sequence[EndpointState]:
        return self.states


def state(name: str, age: float, waiting: int, running: int, kv: float) -> EndpointState:
    metrics = Metrics(waiting=waiting, running=running, kv_cache_usage=kv, updated_at=NOW - age)
    return EndpointState(Endpoint(name, "10.0.0.1", 8000), metrics)


def registry_for(states: Sequence[EndpointState]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PoolMetricsCollector("pool-a", FixedSource(states), clock=lambda: NOW))
    return registry


def test_gauges_cover_fresh_endpoints_only() -> None:
    registry = registry_for([
        state("p0-rank-0", 0.1, waiting=2, running=1, kv=0.2),
        state("p0-rank-1", 1.9, waiting=4, running=3, kv=0.6),
        state("p1-rank-0", 2.5, waiting=100, running=100, kv=1.0),  # stale: over 2 s
    ])  # fmt: skip
    pool = {"name": "pool-a"}
    value = registry.get_sample_value
    assert value("inference_pool_average_kv_cache_utilization", pool) == 0.4
    assert value("inference_pool_average_queue_size", pool) == 3.0
    assert value("inference_pool_average_running_requests", pool) == 2.0
    assert value("inference_pool_ready_pods", pool) == 2.0
    per_pod = "inference_pool_per_pod_queue_size"
    assert value(per_pod, {**pool, "model_server_pod": "p0-rank-1"}) == 4.0
    assert value(per_pod, {**pool, "model_server_pod": "p1-rank-0"}) is None


def test_no_fresh_endpoint_reports_zero_ready_and_no_averages() -> None:
    registry = registry_for([state("p0-rank-0", 5.0, waiting=1, running=1, kv=0.5)])
    assert registry.get_sample_value("inference_pool_ready_pods", {"name": "pool-a"}) == 0.0
    assert (
        registry.get_sample_value("inference_pool_average_queue_size", {"name": "pool-a"}) is None
    )
