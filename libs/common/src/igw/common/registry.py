"""A plugin registry both services build on: type name -> plugin class, passed in, never global.

`Registry` starts with the classes it is given (a service's one explicit table, STYLE §5) and may
add out-of-tree classes from an entry-point group, each entry point naming a class. A type name
registered twice raises `ValueError`; nothing registers itself on import. A service subclasses it
to check what a class must be (`_check`) and to build instances its own way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import metadata
from typing import Any, ClassVar, Generic, Protocol, TypeVar

__all__ = ["Registrable", "Registry"]


class Registrable(Protocol):
    type_name: ClassVar[str]


T = TypeVar("T", bound=Registrable)


class Registry(Generic[T]):
    """Plugin classes by `type_name`; `what` names them in errors ("BBR plugin type ...")."""

    what: ClassVar[str] = "plugin"

    def __init__(self, types: Iterable[type[T]] = ()) -> None:
        self._types: dict[str, type[T]] = {}
        for plugin_type in types:
            self.register(plugin_type)

    def register(self, plugin_type: type[T]) -> None:
        name = plugin_type.type_name
        if name in self._types:
            raise ValueError(f"{self.what} type {name!r} is registered twice")
        self._check(plugin_type)
        self._types[name] = plugin_type

    def _check(self, plugin_type: type[T]) -> None:
        """Raises `ValueError` when `plugin_type` cannot be registered; any class can here."""

    def register_entry_points(self, group: str) -> None:
        """Registers the class each entry point of `group` names (out-of-tree plugins)."""
        for entry in metadata.entry_points(group=group):
            loaded: Any = entry.load()
            self.register(loaded)

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._types

    def __iter__(self) -> Iterator[type[T]]:
        return iter(self._types.values())

    def get(self, type_name: str) -> type[T] | None:
        return self._types.get(type_name)

    def types(self) -> list[str]:
        """Every registered type name, sorted."""
        return sorted(self._types)
