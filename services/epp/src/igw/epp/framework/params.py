"""Decoding a plugin's `parameters` into its typed struct, the one way every plugin does it.

Parameter structs derive from `Params` (with `frozen=True` repeated, which type checkers need to
see), spell their fields in Python (`max_num_of_endpoints`) and map upstream's camelCase names
with msgspec's `rename="camel"`; a name camelCase cannot produce is given with
`msgspec.field(name=...)`. Unknown fields are refused, and a bad value raises
`msgspec.ValidationError` naming the field as the document spells it (`... - at $.maxBytes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self, TypeVar

import msgspec

__all__ = ["NoParams", "ParameterlessPlugin", "Params", "decode_params"]

S = TypeVar("S", bound=msgspec.Struct)


class Params(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, rename="camel"):
    """The base of every plugin's parameters: strict, immutable, upstream's camelCase names."""


class NoParams(Params, frozen=True):
    """For plugins without parameters: any field given is an error."""


def decode_params(params: Mapping[str, Any] | None, struct: type[S]) -> S:
    """Raises `msgspec.ValidationError` naming the field (`... - at $.field`)."""
    return msgspec.convert(dict(params or {}), struct)


class ParameterlessPlugin:
    """The construction path of every plugin that takes no parameters: a name, nothing else."""

    type_name: ClassVar[str]

    def __init__(self, name: str | None = None) -> None:
        self.name = name or self.type_name

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: object,  # noqa: ARG003 - the PluginHandle of the protocol; unused here
    ) -> Self:
        decode_params(params, NoParams)
        return cls(name)
