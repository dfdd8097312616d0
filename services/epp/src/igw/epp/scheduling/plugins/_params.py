"""Decoding a plugin's `parameters` into its typed struct, the one way every plugin does it."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol, Self, TypeVar

import msgspec

__all__ = ["NoParams", "ParameterlessPlugin", "PickerBase", "PickerParams", "decode_params"]

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


class _HasRng(Protocol):
    @property
    def rng(self) -> random.Random: ...


class PickerBase:
    """The construction path shared by the pickers: `maxNumOfEndpoints` and the handle's RNG."""

    type_name: ClassVar[str]

    def __init__(
        self, name: str | None = None, *, rng: random.Random, max_endpoints: int = 1
    ) -> None:
        self.name = name or self.type_name
        self.rng = rng
        self.max_endpoints = max(1, max_endpoints)

    @classmethod
    def from_config(cls, name: str, params: Mapping[str, Any], handle: _HasRng) -> Self:
        p = decode_params(params, PickerParams)
        return cls(name, rng=handle.rng, max_endpoints=p.maxNumOfEndpoints)
