"""`max-score-picker`: the highest total scores win; ties are broken at random.

Returns the top `maxNumOfEndpoints` (default 1; <= 0 means 1), as upstream: shuffle, then a
stable sort by score, descending.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.scheduling.plugins._picker import PickerBase

__all__ = ["MaxScorePicker"]


class MaxScorePicker(PickerBase):
    type_name: ClassVar[str] = "max-score-picker"

    def pick(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,  # noqa: ARG002 - protocol
        endpoints: Sequence[EndpointState],
        scores: Sequence[float],
    ) -> Sequence[EndpointState]:
        if not endpoints:
            return []
        if self.max_endpoints == 1:
            best = max(scores)
            ties = [i for i, s in enumerate(scores) if s == best]
            return [endpoints[ties[0] if len(ties) == 1 else self.rng.choice(ties)]]
        order = list(range(len(endpoints)))
        self.rng.shuffle(order)
        order.sort(key=scores.__getitem__, reverse=True)  # stable: shuffled order breaks ties
        return [endpoints[i] for i in order[: self.max_endpoints]]
