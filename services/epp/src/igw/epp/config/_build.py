"""The loader's working state: the registry, the handle and the plugin instances by name.

Instances keep configuration order (auto-created ones follow); every phase reads and extends the
same `Build`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec

from igw.epp.config.builtin import UNSUPPORTED_TYPES
from igw.epp.config.errors import ConfigError, from_validation_error, join
from igw.epp.config.schema import PluginDoc
from igw.epp.framework import Kind, Plugin, PluginHandle, PluginRegistry

__all__ = ["Build"]

P = TypeVar("P")


@dataclass
class Build:
    registry: PluginRegistry
    handle: PluginHandle
    instances: dict[str, Plugin] = field(default_factory=dict)

    def of_kind(self, kind: Kind[P]) -> list[P]:
        """The instances of `kind`, in creation order."""
        return [p for p in self.instances.values() if kind.accepts(p)]

    def add_documented(self, docs: list[PluginDoc]) -> None:
        """Instantiates the `plugins` list: names default to types, duplicates are errors."""
        for i, doc in enumerate(docs):
            path = f"plugins[{i}]"
            name = doc.name or doc.type
            if name in self.instances:
                raise ConfigError(join(path, "name"), f"plugin name {name!r} is used twice")
            self.create(doc.type, name, doc.parameters or {}, path)

    def create(self, type_name: str, name: str, params: Mapping[str, Any], path: str) -> Plugin:
        """Builds and records one instance; `path` locates it in the document for errors."""
        reason = UNSUPPORTED_TYPES.get(type_name)
        if reason is not None and type_name not in self.registry:
            raise ConfigError(
                join(path, "type"),
                f"plugin {name!r} has type {type_name!r}, which is {reason}: "
                "it is experimental or unsupported in igw",
            )
        if type_name not in self.registry:
            known = ", ".join(self.registry.types())
            raise ConfigError(
                join(path, "type"), f"unknown plugin type {type_name!r} (known: {known})"
            )
        try:
            plugin = self.registry.create(type_name, name, params, self.handle)
        except msgspec.ValidationError as e:
            raise from_validation_error(e, join(path, "parameters")) from None
        except ValueError as e:
            raise ConfigError(join(path, "parameters"), f"plugin {name!r}: {e}") from None
        self.instances[name] = plugin
        return plugin

    def resolve(self, ref: str, kind: Kind[P], path: str) -> P:
        """The instance named `ref`, or a default instance of type `ref` when none is named so;
        it must implement `kind`."""
        plugin = self.instances.get(ref)
        if plugin is None:
            if not self.registry.implements(ref, kind):
                raise ConfigError(path, f"no plugin named {ref!r} in plugins")
            plugin = self.create(ref, ref, {}, path)
        if not kind.accepts(plugin):
            raise ConfigError(path, f"plugin {ref!r} ({plugin.type_name}) is not a {kind}")
        return plugin

    def find(self, ref: str, kind: Kind[P], path: str) -> P:
        """The configured instance named `ref`, which must implement `kind` (no default)."""
        plugin = self.instances.get(ref)
        if plugin is None:
            raise ConfigError(path, f"no plugin named {ref!r} in plugins")
        if not kind.accepts(plugin):
            raise ConfigError(path, f"plugin {ref!r} ({plugin.type_name}) is not a {kind}")
        return plugin
