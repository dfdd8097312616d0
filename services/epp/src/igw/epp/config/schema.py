"""The EndpointPickerConfig document (`inference.networking.x-k8s.io/v1alpha1`), decoded strictly.

Field names are upstream's JSON names; an unknown field anywhere is an error naming its path.
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
    "FlowControlDoc",
    "PluginDoc",
    "PluginRefDoc",
    "PriorityBandDoc",
    "ProfileDoc",
    "ProfilePluginDoc",
]

API_VERSION = "inference.networking.x-k8s.io/v1alpha1"
KIND = "EndpointPickerConfig"


class _Doc(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class PluginDoc(_Doc):
    type: str
    name: str = ""
    """Defaults to `type`."""
    parameters: dict[str, Any] | None = None


class ProfilePluginDoc(_Doc):
    pluginRef: str  # noqa: N815 - upstream's field names, here and below
    weight: float = 1.0


class ProfileDoc(_Doc):
    name: str
    plugins: list[ProfilePluginDoc] = []


class PluginRefDoc(_Doc):
    pluginRef: str  # noqa: N815


class DataSourceDoc(_Doc):
    pluginRef: str  # noqa: N815
    extractors: list[PluginRefDoc] = []


class DataLayerDoc(_Doc):
    sources: list[DataSourceDoc] = []


class PriorityBandDoc(_Doc):
    priority: int | None = None
    """Required in `priorityBands`, absent in `defaultPriorityBand`."""
    maxBytes: int | str | None = None  # noqa: N815
    maxRequests: int | None = None  # noqa: N815
    fairnessPolicyRef: str | None = None  # noqa: N815
    orderingPolicyRef: str | None = None  # noqa: N815


class FlowControlDoc(_Doc):
    maxBytes: int | str | None = None  # noqa: N815
    maxRequests: int | None = None  # noqa: N815
    defaultRequestTTL: str | float | None = None  # noqa: N815
    defaultPriorityBand: PriorityBandDoc | None = None  # noqa: N815
    priorityBands: list[PriorityBandDoc] = []  # noqa: N815
    usageLimitPolicyPluginRef: str | None = None  # noqa: N815


class EndpointPickerConfigDoc(_Doc):
    apiVersion: str  # noqa: N815
    kind: str
    featureGates: list[str] = []  # noqa: N815
    plugins: list[PluginDoc] = []
    schedulingProfiles: list[ProfileDoc] = []  # noqa: N815
    saturationDetector: PluginRefDoc | None = None  # noqa: N815
    dataLayer: DataLayerDoc | None = None  # noqa: N815
    parser: PluginRefDoc | None = None
    flowControl: FlowControlDoc | None = None  # noqa: N815
