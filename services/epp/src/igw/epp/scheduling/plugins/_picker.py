"""The construction path the pickers share: `maxNumOfEndpoints` and the handle's RNG."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, ClassVar, Self

from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.params import Params, decode_params

__all__ = ["PickerBase", "PickerParams"]


class PickerParams(Params, frozen=True):
    max_num_of_endpoints: int = 1
    """How many endpoints to return (the first is the target, the rest fallbacks); <= 0 -> 1."""


class PickerBase:
    type_name: ClassVar[str]

    def __init__(
        self, name: str | None = None, *, rng: random.Random, max_endpoints: int = 1
    ) -> None:
        self.name = name or self.type_name
        self.rng = rng
        self.max_endpoints = max(1, max_endpoints)

    @classmethod
    def from_config(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> Self:
        p = decode_params(params, PickerParams)
        return cls(name, rng=handle.rng, max_endpoints=p.max_num_of_endpoints)
