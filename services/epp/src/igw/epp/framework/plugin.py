"""`Plugin`: what every EPP plugin is, whatever its kinds (the kind protocols extend it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, Self

from igw.epp.framework.handle import PluginHandle

__all__ = ["Plugin"]


class Plugin(Protocol):
    """Every plugin: a registered kebab-case `type_name`, an instance `name`, one constructor.

    `from_config` validates `params` into the plugin's typed parameter struct (unknown fields
    rejected, defaults in the struct, upstream's camelCase names) and calls the plain `__init__`
    that tests use. It raises `msgspec.ValidationError` or `ValueError` on bad parameters.
    """

    type_name: ClassVar[str]
    name: str

    @classmethod
    def from_config(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> Self: ...
