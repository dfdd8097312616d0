"""`queue-scorer`: prefers the endpoint with the shortest waiting queue
(WaitingQueueSize).

Score = `(max - x) / (max - min)` over the candidates' values x; when all are equal every
endpoint scores 1.0. No parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.scheduling.cycle_state import CycleState
from igw.epp.scheduling.plugins._normalize import inverted_min_max
from igw.epp.scheduling.plugins._params import ParameterlessPlugin

__all__ = ["QueueScorer"]


class QueueScorer(ParameterlessPlugin):
    type_name: ClassVar[str] = "queue-scorer"
    category: ClassVar[Literal["distribution", "affinity"]] = "distribution"

    def score(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,  # noqa: ARG002 - protocol
        endpoints: Sequence[EndpointState],
    ) -> Sequence[float]:
        return inverted_min_max([e.metrics.waiting for e in endpoints])
