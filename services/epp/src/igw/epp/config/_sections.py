"""Phase: the sections beside the profiles: `featureGates`, `saturationDetector`, `parser`,
`dataLayer` and `flowControl`, each resolved against the plugin instances with its default.

An omitted `dataLayer` section means one source, the plugin named `metrics-data-source`, with the
extractor named `core-metrics-extractor`: the instances of those names in `plugins` when present
(with their parameters), else defaults, as upstream resolves them by name. `sources: []` turns
collection off, as upstream. What the data layer cannot honour is refused with the field's path:
more than one source (there is one data-source type, the metrics scraper, and upstream's
multi-source merging has no use with one type), and a source without exactly one extractor.
"""

from __future__ import annotations

from igw.epp.config._build import Build
from igw.epp.config.errors import ConfigError
from igw.epp.config.schema import (
    DataLayerDoc,
    EvictionDoc,
    FlowControlDoc,
    PluginRefDoc,
    PriorityBandDoc,
)
from igw.epp.datalayer import CoreMetricsExtractor, DataLayerConfig, MetricsDataSource
from igw.epp.flowcontrol import (
    ALWAYS_REGISTERED_POLICIES,
    BandConfig,
    EvictionConfig,
    FlowControlConfig,
)
from igw.epp.flowcontrol.plugins import StaticUsageLimitPolicy
from igw.epp.framework import kinds
from igw.epp.framework.parsing import Parser
from igw.epp.framework.requestcontrol import SaturationDetector
from igw.epp.parsers import OpenAIParser
from igw.epp.scheduling.plugins import UtilizationDetector
from igw.epp.units import parse_duration, parse_quantity

__all__ = [
    "FEATURE_GATES",
    "check_gates",
    "data_layer",
    "flow_control",
    "parser",
    "saturation_detector",
]

FEATURE_GATES = ("flowControl", "dataLayer", "enableLegacyMetrics", "prepareDataPlugins")
"""`dataLayer` is on by default (deprecated upstream); `prepareDataPlugins` (v1.3-v1.4) too."""


def check_gates(gates: list[str]) -> frozenset[str]:
    for i, gate in enumerate(gates):
        if gate not in FEATURE_GATES:
            known = ", ".join(FEATURE_GATES)
            raise ConfigError(f"featureGates[{i}]", f"unknown feature gate {gate!r} ({known})")
    return frozenset(gates)


def saturation_detector(build: Build, doc: PluginRefDoc | None) -> SaturationDetector:
    ref = doc.plugin_ref if doc is not None else UtilizationDetector.type_name
    return build.resolve(ref, kinds.SATURATION_DETECTOR, "saturationDetector.pluginRef")


def parser(build: Build, doc: PluginRefDoc | None) -> Parser:
    ref = doc.plugin_ref if doc is not None else OpenAIParser.type_name
    return build.resolve(ref, kinds.PARSER, "parser.pluginRef")


def data_layer(build: Build, doc: DataLayerDoc | None) -> DataLayerConfig:
    if doc is None:
        source = build.resolve(MetricsDataSource.type_name, kinds.DATA_SOURCE, "dataLayer")
        extractor = build.resolve(CoreMetricsExtractor.type_name, kinds.DATA_EXTRACTOR, "dataLayer")
        return DataLayerConfig(source, extractor)
    if not doc.sources:
        return DataLayerConfig.off()
    if len(doc.sources) > 1:
        raise ConfigError(
            "dataLayer.sources[1]",
            f"source {doc.sources[1].plugin_ref!r}: only one data source is supported (the "
            f"metrics scraper, {doc.sources[0].plugin_ref!r}); got {len(doc.sources)}",
        )
    (source_doc,) = doc.sources
    path = "dataLayer.sources[0]"
    source = build.resolve(source_doc.plugin_ref, kinds.DATA_SOURCE, f"{path}.pluginRef")
    extractors = [
        build.resolve(e.plugin_ref, kinds.DATA_EXTRACTOR, f"{path}.extractors[{j}].pluginRef")
        for j, e in enumerate(source_doc.extractors)
    ]
    if len(extractors) != 1:
        raise ConfigError(
            f"{path}.extractors",
            f"source {source.name!r} needs exactly one extractor (a core-metrics-extractor); "
            f"got {len(extractors)}",
        )
    return DataLayerConfig(source, extractors[0])


def flow_control(build: Build, doc: FlowControlDoc | None, enabled: bool) -> FlowControlConfig:
    for policy in ALWAYS_REGISTERED_POLICIES:
        if policy not in build.instances:
            build.create(policy, policy, {}, "plugins")
    if doc is None:
        return FlowControlConfig(enabled)
    usage = doc.usage_limit_policy_plugin_ref or StaticUsageLimitPolicy.type_name
    build.find(usage, kinds.USAGE_LIMIT_POLICY, "flowControl.usageLimitPolicyPluginRef")
    default = _band(build, doc.default_priority_band or PriorityBandDoc(), "defaultPriorityBand")
    bands: list[BandConfig] = []
    for i, band_doc in enumerate(doc.priority_bands):
        path = f"priorityBands[{i}]"
        if band_doc.priority is None:
            raise ConfigError(f"flowControl.{path}.priority", "missing required field")
        if any(b.priority == band_doc.priority for b in bands):
            raise ConfigError(
                f"flowControl.{path}.priority", f"priority {band_doc.priority} is used twice"
            )
        bands.append(_band(build, band_doc, path))
    return FlowControlConfig(
        enabled,
        max_bytes=_quantity(doc.max_bytes, "maxBytes"),
        max_requests=_quantity(doc.max_requests, "maxRequests"),
        default_request_ttl=_duration(doc.default_request_ttl, "defaultRequestTTL"),
        default_band=default,
        bands=tuple(bands),
        usage_limit_policy=usage,
        eviction=_eviction(doc.eviction),
    )


def _eviction(doc: EvictionDoc | None) -> EvictionConfig | None:
    if doc is None:
        return None
    base = EvictionConfig()
    threshold, interval = doc.starvation_threshold, doc.min_interval
    config = EvictionConfig(
        base.starvation_threshold_s if threshold is None
        else _duration(threshold, "eviction.starvationThreshold"),
        base.min_interval_s if interval is None else _duration(interval, "eviction.minInterval"),
    )  # fmt: skip
    if config.starvation_threshold_s <= 0:
        raise ConfigError("flowControl.eviction.starvationThreshold", "must be positive")
    return config


def _band(build: Build, doc: PriorityBandDoc, path: str) -> BandConfig:
    base = BandConfig(doc.priority)
    fairness = doc.fairness_policy_ref or base.fairness_policy
    ordering = doc.ordering_policy_ref or base.ordering_policy
    build.find(fairness, kinds.FAIRNESS_POLICY, f"flowControl.{path}.fairnessPolicyRef")
    build.find(ordering, kinds.ORDERING_POLICY, f"flowControl.{path}.orderingPolicyRef")
    max_bytes = _quantity(doc.max_bytes, f"{path}.maxBytes") if doc.max_bytes else base.max_bytes
    return BandConfig(
        doc.priority, max_bytes, _quantity(doc.max_requests, f"{path}.maxRequests"),
        fairness, ordering,
    )  # fmt: skip


def _quantity(value: int | str | None, path: str) -> int:
    try:
        return parse_quantity(value) if value is not None else 0
    except ValueError as e:
        raise ConfigError(f"flowControl.{path}", str(e)) from None


def _duration(value: str | float | None, path: str) -> float:
    try:
        return parse_duration(value) if value is not None else 0.0
    except ValueError as e:
        raise ConfigError(f"flowControl.{path}", str(e)) from None
