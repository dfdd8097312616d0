"""The EndpointPickerConfig document (`inference.networking.x-k8s.io/v1alpha1`), decoded strictly.

Fields are spelled in Python and mapped to upstream's JSON names with msgspec's `rename="camel"`
(`defaultRequestTTL`, which camelCase cannot spell, is named explicitly); an unknown field
anywhere is an error naming its path as the document spells it.
Plugin `parameters` stay raw here: each plugin's own struct validates them when it is built.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "API_VERSION",
    "KIND",
    "DataLayerDoc",
    "DataSourceDoc",
    "EndpointPickerConfigDoc",
    "EvictionDoc",
    "FlowControlDoc",
    "PluginDoc",
    "PluginRefDoc",
    "PriorityBandDoc",
    "ProfileDoc",
    "ProfilePluginDoc",
]

API_VERSION = "inference.networking.x-k8s.io/v1alpha1"
KIND = "EndpointPickerConfig"


class _Doc(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, rename="camel"):
    pass


class PluginDoc(_Doc):
    type: str
    name: str = ""
    """Defaults to `type`."""
    parameters: dict[str, Any] | None = None


class ProfilePluginDoc(_Doc):
    plugin_ref: str
    weight: float = 1.0


class ProfileDoc(_Doc):
    name: str
    plugins: list[ProfilePluginDoc] = []


class PluginRefDoc(_Doc):
    plugin_ref: str


class DataSourceDoc(_Doc):
    plugin_ref: str
    extractors: list[PluginRefDoc] = []


class DataLayerDoc(_Doc):
    sources: list[DataSourceDoc] = []


class PriorityBandDoc(_Doc):
    priority: int | None = None
    """Required in `priorityBands`, absent in `defaultPriorityBand`."""
    max_bytes: int | str | None = None
    max_requests: int | str | None = None
    fairness_policy_ref: str | None = None
    ordering_policy_ref: str | None = None


class EvictionDoc(_Doc):
    starvation_threshold: str | float | None = None
    min_interval: str | float | None = None


class FlowControlDoc(_Doc):
    max_bytes: int | str | None = None
    max_requests: int | str | None = None
    default_request_ttl: str | float | None = msgspec.field(default=None, name="defaultRequestTTL")
    default_priority_band: PriorityBandDoc | None = None
    priority_bands: list[PriorityBandDoc] = []
    usage_limit_policy_plugin_ref: str | None = None
    eviction: EvictionDoc | None = None


class EndpointPickerConfigDoc(_Doc):
    api_version: str
    kind: str
    feature_gates: list[str] = []
    plugins: list[PluginDoc] = []
    scheduling_profiles: list[ProfileDoc] = []
    saturation_detector: PluginRefDoc | None = None
    data_layer: DataLayerDoc | None = None
    parser: PluginRefDoc | None = None
    flow_control: FlowControlDoc | None = None
