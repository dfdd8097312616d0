"""The EPP's one explicit plugin table (STYLE §5), and the upstream types igw refuses.

`builtin_registry()` builds a fresh `PluginRegistry` with every built-in type (scheduling and
request-control plugins, parsers, the data layer's source and extractor, the flow-control
policies) and, unless told not to, out-of-tree plugins from the `igw.epp.plugins` entry-point
group. `DEFAULT_PRODUCERS` says which producer the loader auto-creates for an attribute a
configured plugin consumes and nobody produces.
"""

from __future__ import annotations

from collections.abc import Mapping

from igw.epp.datalayer import CoreMetricsExtractor, MetricsDataSource
from igw.epp.flowcontrol import POLICY_TYPES
from igw.epp.framework import Plugin, PluginRegistry
from igw.epp.parsers import OpenAIParser, PassthroughParser
from igw.epp.scheduling import (
    DISPATCHED_LOAD,
    INFLIGHT_LOAD,
    PREDICTED_TTFT,
    PREFIX_CACHE_MATCH,
    plugins,
)

__all__ = ["BUILTIN_TYPES", "DEFAULT_PRODUCERS", "UNSUPPORTED_TYPES", "builtin_registry"]

BUILTIN_TYPES: tuple[type[Plugin], ...] = (
    plugins.SingleProfileHandler,
    plugins.QueueScorer,
    plugins.RunningRequestsSizeScorer,
    plugins.KvCacheUtilizationScorer,
    plugins.LoraAffinityScorer,
    plugins.PrefixCacheScorer,
    plugins.TokenLoadScorer,
    plugins.PredictedTtftScorer,
    plugins.OnlineLatencyProducer,
    plugins.LatencySloAdmitter,
    plugins.ApproxPrefixCacheProducer,
    plugins.InflightLoadProducer,
    plugins.UtilizationDetector,
    plugins.ConcurrencyDetector,
    plugins.PrefixCacheAffinityFilter,
    plugins.HeaderBasedTestingFilter,
    plugins.MaxScorePicker,
    plugins.RandomPicker,
    plugins.WeightedRandomPicker,
    plugins.RequestAttributeReporter,
    plugins.RequestLatencyReporter,
    plugins.DestinationEndpointServedVerifier,
    OpenAIParser,
    PassthroughParser,
    MetricsDataSource,
    CoreMetricsExtractor,
    *POLICY_TYPES,
)

DEFAULT_PRODUCERS: Mapping[str, str] = {
    PREFIX_CACHE_MATCH.name: plugins.ApproxPrefixCacheProducer.type_name,
    INFLIGHT_LOAD.name: plugins.InflightLoadProducer.type_name,
    DISPATCHED_LOAD.name: plugins.OnlineLatencyProducer.type_name,
    PREDICTED_TTFT.name: plugins.OnlineLatencyProducer.type_name,
}
"""Attribute key name -> the producer type auto-created for it."""

_PREDICTOR = "experimental upstream (it needs the latency-predictor sidecars)"
_LEGACY = "a v0.x plugin upstream removed"
UNSUPPORTED_TYPES: Mapping[str, str] = {
    "latency-scorer": _PREDICTOR,
    "predicted-latency-producer": _PREDICTOR,
    "slo-headroom-tier-filter": _PREDICTOR,
    "vllmgrpc-parser": "experimental upstream (gRPC bodies); igw parses HTTP bodies only",
    "eviction-sheddable-filter": "experimental upstream and not wired there",
    "eviction-priority-then-time-ordering": "experimental upstream and not wired there",
    "k8s-notification-source": "an event-driven data source igw does not have",
    "endpoint-notification-source": "an event-driven data source igw does not have",
    "decision-tree-filter": _LEGACY,
    "least-queue-filter": f"{_LEGACY}; use queue-scorer",
    "least-kv-cache-filter": f"{_LEGACY}; use kv-cache-utilization-scorer",
    "low-queue-filter": f"{_LEGACY}; use utilization-detector",
    "lora-affinity-filter": f"{_LEGACY}; use lora-affinity-scorer",
    "kv-cache-scorer": "the v0.x name of kv-cache-utilization-scorer",
}
"""Type names upstream has (or had) that igw refuses, with the reason."""


def builtin_registry(*, entry_points: bool = True) -> PluginRegistry:
    registry = PluginRegistry(BUILTIN_TYPES)
    if entry_points:
        registry.register_entry_points()
    return registry
