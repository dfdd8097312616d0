"""The plugin registry: type name -> plugin class, passed in, never global (STYLE §5-6).

`PluginRegistry` starts empty; the EPP's one explicit built-in table lives in
`igw.epp.config.builtin`, and out-of-tree plugins come from the `igw.epp.plugins` entry-point group
(each entry point names a plugin class). Registering a type name twice raises; nothing registers
itself on import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from igw.epp.scheduling.contracts import Plugin, plugin_kinds
from igw.epp.scheduling.handle import PluginHandle

__all__ = ["ENTRY_POINT_GROUP", "PluginRegistry"]

ENTRY_POINT_GROUP = "igw.epp.plugins"


class PluginRegistry:
    def __init__(self, types: Iterable[type[Plugin]] = ()) -> None:
        self._types: dict[str, type[Plugin]] = {}
        for plugin_type in types:
            self.register(plugin_type)

    def register(self, plugin_type: type[Plugin]) -> None:
        name = plugin_type.type_name
        if name in self._types:
            raise ValueError(f"plugin type {name!r} is registered twice")
        if not plugin_kinds(plugin_type):
            raise ValueError(f"plugin type {name!r} implements no plugin kind")
        self._types[name] = plugin_type

    def register_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        for entry in metadata.entry_points(group=group):
            self.register(entry.load())

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._types

    def get(self, type_name: str) -> type[Plugin] | None:
        return self._types.get(type_name)

    def types(self, kind: str | None = None) -> list[str]:
        """Sorted type names, optionally only those implementing `kind`."""
        return sorted(
            name for name, cls in self._types.items() if kind is None or kind in plugin_kinds(cls)
        )

    def kinds(self, type_name: str) -> frozenset[str]:
        cls = self._types.get(type_name)
        return plugin_kinds(cls) if cls is not None else frozenset()

    def create(
        self, type_name: str, name: str, params: Mapping[str, Any], handle: PluginHandle
    ) -> Plugin:
        """A new instance; raises `KeyError` for an unknown type, and whatever `from_config`
        raises for bad parameters."""
        cls = self._types.get(type_name)
        if cls is None:
            raise KeyError(type_name)
        return cls.from_config(name, params, handle)
