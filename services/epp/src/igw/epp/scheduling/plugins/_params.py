"""Decoding a plugin's `parameters` into its typed struct, the one way every plugin does it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self, TypeVar

import msgspec

__all__ = ["NoParams", "ParameterlessPlugin", "PickerParams", "decode_params"]

S = TypeVar("S", bound=msgspec.Struct)


class NoParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """For plugins without parameters: any field given is an error."""


def decode_params(params: Mapping[str, Any] | None, struct: type[S]) -> S:
    """Raises `msgspec.ValidationError` naming the field (`... - at $.field`)."""
    return msgspec.convert(dict(params or {}), struct)


class PickerParams(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    maxNumOfEndpoints: int = 1  # noqa: N815 - the upstream parameter name
    """How many endpoints to return (the first is the target, the rest fallbacks); <= 0 -> 1."""


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
