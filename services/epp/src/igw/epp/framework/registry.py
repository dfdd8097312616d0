"""The EPP's plugin registry: the common registry, for classes of at least one plugin kind.

`PluginRegistry` starts empty; the EPP's one explicit built-in table lives in
`igw.epp.config.builtin`, and out-of-tree plugins come from the `igw.epp.plugins` entry-point group
(each entry point names a plugin class). Registering a type name twice raises, and so does a class
that implements no kind; nothing registers itself on import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from igw.common.registry import Registry
from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.kinds import Kind, plugin_kinds
from igw.epp.framework.plugin import Plugin

__all__ = ["ENTRY_POINT_GROUP", "PluginRegistry"]

ENTRY_POINT_GROUP = "igw.epp.plugins"


class PluginRegistry(Registry[Plugin]):
    what = "plugin"

    def _check(self, plugin_type: type[Plugin]) -> None:
        if not plugin_kinds(plugin_type):
            raise ValueError(f"plugin type {plugin_type.type_name!r} implements no plugin kind")

    def register_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        super().register_entry_points(group)

    def of_kind(self, kind: Kind[Any]) -> list[str]:
        """Sorted type names of the classes implementing `kind`."""
        return sorted(cls.type_name for cls in self if kind.implemented_by(cls))

    def implements(self, type_name: str, kind: Kind[Any]) -> bool:
        cls = self.get(type_name)
        return cls is not None and kind.implemented_by(cls)

    def create(
        self, type_name: str, name: str, params: Mapping[str, Any], handle: PluginHandle
    ) -> Plugin:
        """A new instance; raises `KeyError` for an unknown type, and whatever `from_config`
        raises for bad parameters."""
        cls = self.get(type_name)
        if cls is None:
            raise KeyError(type_name)
        return cls.from_config(name, params, handle)
