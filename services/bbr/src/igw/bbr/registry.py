"""The BBR's plugin registry and the `--plugin type:name[:json]` flag.

The common registry (`igw.common.registry`, which the EPP's builds on too) with one explicit
table of built-in types, plus out-of-tree plugins from the `igw.bbr.plugins` entry point group
(each entry point names a class with the `RequestPlugin` contract). Registering a type twice is
an error; nothing registers itself on import. With no `--plugin` flag, the BBR runs
upstream's defaults: `body-field-to-header` (`model` -> `X-Gateway-Model-Name`) followed by
`base-model-to-header`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from igw.bbr.plugins import BaseModelToHeader, BodyFieldToHeader, PluginHandle, RequestPlugin
from igw.common.registry import Registry

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "PluginRegistry",
    "PluginSpec",
    "parse_plugin_flag",
]

ENTRY_POINT_GROUP = "igw.bbr.plugins"


@dataclass(frozen=True, slots=True)
class PluginSpec:
    type: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)


DEFAULT_PLUGINS = (
    PluginSpec(
        "body-field-to-header",
        "body-field-to-header",
        {"fieldName": "model", "headerName": "X-Gateway-Model-Name"},
    ),
    PluginSpec("base-model-to-header", "base-model-to-header"),
)


def parse_plugin_flag(text: str) -> PluginSpec:
    """Parses `type:name[:json]`; the JSON part may itself contain colons."""
    parts = text.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"--plugin {text!r}: expected TYPE:NAME or TYPE:NAME:JSON")
    params: Any = {}
    if len(parts) == 3 and parts[2].strip():
        try:
            params = json.loads(parts[2])
        except json.JSONDecodeError as e:
            raise ValueError(f"--plugin {text!r}: parameters are not valid JSON: {e}") from None
        if not isinstance(params, dict):
            raise ValueError(f"--plugin {text!r}: parameters must be a JSON object")
    return PluginSpec(parts[0], parts[1], params)


class PluginRegistry(Registry[RequestPlugin]):
    """Plugin type name -> plugin class; passed in, never global."""

    what = "BBR plugin"

    @classmethod
    def builtin(cls, *, entry_points: bool = True) -> PluginRegistry:
        registry = cls([BodyFieldToHeader, BaseModelToHeader])
        if entry_points:
            registry.register_entry_points(ENTRY_POINT_GROUP)
        return registry

    def build(self, specs: Sequence[PluginSpec], handle: PluginHandle) -> list[RequestPlugin]:
        """Instances in configuration order; a clear `ValueError` names any bad entry."""
        plugins: list[RequestPlugin] = []
        names: set[str] = set()
        for spec in specs:
            plugin_type = self.get(spec.type)
            if plugin_type is None:
                known = ", ".join(self.types())
                raise ValueError(f"unknown BBR plugin type {spec.type!r} (known: {known})")
            if spec.name in names:
                raise ValueError(f"BBR plugin name {spec.name!r} is used twice")
            names.add(spec.name)
            try:
                plugins.append(plugin_type.from_config(spec.name, spec.params, handle))
            except msgspec.ValidationError as e:
                raise ValueError(f"plugin {spec.name!r} ({spec.type}): {e}") from None
        return plugins
