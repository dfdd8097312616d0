"""`weighted-random-picker`: picks at random in proportion to the total scores.

A-Res weighted sampling without replacement: each endpoint draws key `U^(1/score)` (U uniform in
[0, 1)); a score <= 0 gives key 0; the `maxNumOfEndpoints` (default 1; <= 0 means 1) largest keys
win. When every score is <= 0 the choice is uniform.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.scheduling.plugins._picker import PickerBase

__all__ = ["WeightedRandomPicker"]


class WeightedRandomPicker(PickerBase):
    type_name: ClassVar[str] = "weighted-random-picker"

    def pick(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,  # noqa: ARG002 - protocol
        endpoints: Sequence[EndpointState],
        scores: Sequence[float],
    ) -> Sequence[EndpointState]:
        if not endpoints:
            return []
        rng = self.rng
        keys = [rng.random() ** (1.0 / s) if s > 0.0 else 0.0 for s in scores]
        if not any(keys):
            return rng.sample(list(endpoints), min(self.max_endpoints, len(endpoints)))
        order = list(range(len(endpoints)))
        rng.shuffle(order)  # zero keys tie: shuffled order breaks ties
        order.sort(key=keys.__getitem__, reverse=True)
        return [endpoints[i] for i in order[: self.max_endpoints]]
