"""Phase: the sections beside the profiles: `featureGates`, `saturationDetector`, `parser`,
`dataLayer` and `flowControl`, each resolved against the plugin instances with its default."""

from __future__ import annotations

from typing import cast

from igw.epp.config._build import Build
from igw.epp.config.data_layer import (
    CoreMetricsExtractor,
    DataLayerConfig,
    DataSourceConfig,
    ExtractorConfig,
    MetricsDataSource,
)
from igw.epp.config.errors import ConfigError
from igw.epp.config.flow_control import (
    ALWAYS_REGISTERED_POLICIES,
    BandConfig,
    FlowControlConfig,
    FlowControlPolicy,
)
from igw.epp.config.parsers import DEFAULT_PARSER, ParserSpec, ParserStub
from igw.epp.config.schema import DataLayerDoc, FlowControlDoc, PluginRefDoc, PriorityBandDoc
from igw.epp.scheduling.contracts import SaturationDetector
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
    ref = doc.pluginRef if doc is not None else UtilizationDetector.type_name
    plugin = build.resolve(ref, "saturation-detector", "saturationDetector.pluginRef")
    return cast("SaturationDetector", plugin)


def parser(build: Build, doc: PluginRefDoc | None) -> ParserSpec:
    ref = doc.pluginRef if doc is not None else DEFAULT_PARSER
    plugin = build.resolve(ref, "parser", "parser.pluginRef")
    if not isinstance(plugin, ParserStub):
        return ParserSpec(plugin.name, plugin.type_name)
    return plugin.spec()


def data_layer(build: Build, doc: DataLayerDoc | None) -> DataLayerConfig:
    if doc is None:
        return DataLayerConfig()
    sources: list[DataSourceConfig] = []
    for i, source in enumerate(doc.sources):
        path = f"dataLayer.sources[{i}]"
        plugin = build.resolve(source.pluginRef, "data-source", f"{path}.pluginRef")
        extractors = [
            build.resolve(e.pluginRef, "data-extractor", f"{path}.extractors[{j}].pluginRef")
            for j, e in enumerate(source.extractors)
        ]
        sources.append(
            DataSourceConfig(
                plugin.name,
                cast("MetricsDataSource", plugin).params,
                tuple(
                    ExtractorConfig(e.name, cast("CoreMetricsExtractor", e).params)
                    for e in extractors
                ),
            )
        )
    return DataLayerConfig(tuple(sources))


def flow_control(build: Build, doc: FlowControlDoc | None, enabled: bool) -> FlowControlConfig:
    for policy in ALWAYS_REGISTERED_POLICIES:
        if policy not in build.instances:
            build.create(policy, policy, {}, "plugins")
    if doc is None:
        return FlowControlConfig(enabled)
    usage = doc.usageLimitPolicyPluginRef or "static-usage-limit-policy"
    _policy(build, usage, "usage-limit", "flowControl.usageLimitPolicyPluginRef")
    default = _band(build, doc.defaultPriorityBand or PriorityBandDoc(), "defaultPriorityBand")
    bands: list[BandConfig] = []
    for i, band_doc in enumerate(doc.priorityBands):
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
        max_bytes=_quantity(doc.maxBytes, "maxBytes"),
        max_requests=_quantity(doc.maxRequests, "maxRequests"),
        default_request_ttl=_duration(doc.defaultRequestTTL, "defaultRequestTTL"),
        default_band=default,
        bands=tuple(bands),
        usage_limit_policy=usage,
    )


def _band(build: Build, doc: PriorityBandDoc, path: str) -> BandConfig:
    base = BandConfig(doc.priority)
    fairness = doc.fairnessPolicyRef or base.fairness_policy
    ordering = doc.orderingPolicyRef or base.ordering_policy
    _policy(build, fairness, "fairness", f"flowControl.{path}.fairnessPolicyRef")
    _policy(build, ordering, "ordering", f"flowControl.{path}.orderingPolicyRef")
    max_bytes = _quantity(doc.maxBytes, f"{path}.maxBytes") if doc.maxBytes else base.max_bytes
    return BandConfig(
        doc.priority, max_bytes, _quantity(doc.maxRequests, f"{path}.maxRequests"),
        fairness, ordering,
    )  # fmt: skip


def _policy(build: Build, ref: str, role: str, path: str) -> None:
    plugin = build.instances.get(ref)
    if plugin is None:
        raise ConfigError(path, f"no plugin named {ref!r} in plugins")
    if not isinstance(plugin, FlowControlPolicy) or plugin.policy_role != role:
        raise ConfigError(path, f"plugin {ref!r} ({plugin.type_name}) is not a {role} policy")


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
