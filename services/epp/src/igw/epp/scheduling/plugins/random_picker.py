"""`random-picker`: ignores scores; returns `maxNumOfEndpoints` (default 1; <= 0 means 1)
distinct endpoints chosen uniformly at random.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.scheduling.cycle_state import CycleState
from igw.epp.scheduling.handle import PluginHandle
from igw.epp.scheduling.plugins._params import PickerParams, decode_params

__all__ = ["RandomPicker"]


class RandomPicker:
    type_name: ClassVar[str] = "random-picker"

    def __init__(self, name: str = type_name, *, rng: random.Random, max_endpoints: int = 1):
        self.name = name
        self.rng = rng
        self.max_endpoints = max(1, max_endpoints)

    @classmethod
    def from_config(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> Self:
        p = decode_params(params, PickerParams)
        return cls(name, rng=handle.rng, max_endpoints=p.maxNumOfEndpoints)

    def pick(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,  # noqa: ARG002 - protocol
        endpoints: Sequence[EndpointState],
        scores: Sequence[float],  # noqa: ARG002 - protocol
    ) -> Sequence[EndpointState]:
        if not endpoints:
            return []
        if self.max_endpoints == 1:
            return [self.rng.choice(endpoints)]
        return self.rng.sample(list(endpoints), min(self.max_endpoints, len(endpoints)))
