"""`random-picker`: ignores scores; returns `maxNumOfEndpoints` (default 1; <= 0 means 1)
distinct endpoints chosen uniformly at random.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.scheduling.plugins._picker import PickerBase

__all__ = ["RandomPicker"]


class RandomPicker(PickerBase):
    type_name: ClassVar[str] = "random-picker"

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
