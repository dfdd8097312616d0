"""The BBR's plugin registry and the `--plugin type:name[:json]` flag.

One explicit table of built-in types, plus out-of-tree plugins from the `igw.bbr.plugins` entry
point group (each entry point names a class with the `RequestPlugin` contract). Registering a type
twice is an error; nothing registers itself on import. With no `--plugin` flag, the BBR runs
upstream's defaults: `body-field-to-header` (`model` -> `X-Gateway-Model-Name`) followed by
`base-model-to-header`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import msgspec

from igw.bbr.plugins import BaseModelToHeader, BodyFieldToHeader, PluginHandle, RequestPlugin

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


class PluginRegistry:
    """Plugin type name -> plugin class; passed in, never global."""

    def __init__(self, types: Iterable[type[RequestPlugin]] = ()) -> None:
        self._types: dict[str, type[RequestPlugin]] = {}
        for plugin_type in types:
            self.register(plugin_type)

    @classmethod
    def builtin(cls, *, entry_points: bool = True) -> PluginRegistry:
        registry = cls([BodyFieldToHeader, BaseModelToHeader])
        if entry_points:
            for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
                registry.register(entry.load())
        return registry

    def register(self, plugin_type: type[RequestPlugin]) -> None:
        name = plugin_type.type_name
        if name in self._types:
            raise ValueError(f"BBR plugin type {name!r} is registered twice")
        self._types[name] = plugin_type

    def types(self) -> list[str]:
        return sorted(self._types)

    def build(self, specs: Sequence[PluginSpec], handle: PluginHandle) -> list[RequestPlugin]:
        """Instances in configuration order; a clear `ValueError` names any bad entry."""
        plugins: list[RequestPlugin] = []
        names: set[str] = set()
        for spec in specs:
            plugin_type = self._types.get(spec.type)
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
