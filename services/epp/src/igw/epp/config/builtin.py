"""The EPP's one explicit plugin table (STYLE §5), and the upstream types igw refuses.

`builtin_registry()` builds a fresh `PluginRegistry` with every built-in type, the parser names the
caller supports, and (unless told not to) out-of-tree plugins from the `igw.epp.plugins`
entry-point group. `DEFAULT_PRODUCERS` says which producer the loader auto-creates for an
attribute a configured plugin consumes and nobody produces.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from igw.epp.config.data_layer import CoreMetricsExtractor, MetricsDataSource
from igw.epp.config.flow_control import POLICY_TYPES
from igw.epp.config.parsers import KNOWN_PARSERS, parser_types
from igw.epp.scheduling import plugins
from igw.epp.scheduling.attributes import INFLIGHT_LOAD, PREFIX_CACHE_MATCH
from igw.epp.scheduling.contracts import Plugin
from igw.epp.scheduling.registry import PluginRegistry

__all__ = ["BUILTIN_TYPES", "DEFAULT_PRODUCERS", "UNSUPPORTED_TYPES", "builtin_registry"]

BUILTIN_TYPES: tuple[type[Plugin], ...] = (
    plugins.SingleProfileHandler,
    plugins.QueueScorer,
    plugins.RunningRequestsSizeScorer,
    plugins.KvCacheUtilizationScorer,
    plugins.LoraAffinityScorer,
    plugins.PrefixCacheScorer,
    plugins.TokenLoadScorer,
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
    plugins.DestinationEndpointServedVerifier,
    MetricsDataSource,
    CoreMetricsExtractor,
    *POLICY_TYPES,
)

DEFAULT_PRODUCERS: Mapping[str, str] = {
    PREFIX_CACHE_MATCH.name: plugins.ApproxPrefixCacheProducer.type_name,
    INFLIGHT_LOAD.name: plugins.InflightLoadProducer.type_name,
}
"""Attribute key name -> the producer type auto-created for it."""

_PREDICTOR = "experimental upstream (it needs the latency-predictor sidecars)"
_LEGACY = "a v0.x plugin upstream removed"
UNSUPPORTED_TYPES: Mapping[str, str] = {
    "latency-scorer": _PREDICTOR,
    "predicted-latency-producer": _PREDICTOR,
    "slo-headroom-tier-filter": _PREDICTOR,
    "latency-slo-admitter": _PREDICTOR,
    "slo-deadline-ordering-policy": "experimental upstream (SLO headers)",
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


def builtin_registry(
    *, parsers: Iterable[str] = KNOWN_PARSERS, entry_points: bool = True
) -> PluginRegistry:
    registry = PluginRegistry((*BUILTIN_TYPES, *parser_types(parsers)))
    if entry_points:
        registry.register_entry_points()
    return registry
