"""`queue-scorer`: prefers the endpoint with the shortest waiting queue
(WaitingQueueSize).

Score = `(max - x) / (max - min)` over the candidates' values x; when all are equal every
endpoint scores 1.0. No parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.scheduling.cycle_state import CycleState
from igw.epp.scheduling.handle import PluginHandle
from igw.epp.scheduling.plugins._normalize import inverted_min_max
from igw.epp.scheduling.plugins._params import NoParams, decode_params

__all__ = ["QueueScorer"]


class QueueScorer:
    type_name: ClassVar[str] = "queue-scorer"
    category: ClassVar[Literal["distribution", "affinity"]] = "distribution"

    def __init__(self, name: str = type_name) -> None:
        self.name = name

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: PluginHandle,  # noqa: ARG003 - protocol
    ) -> Self:
        decode_params(params, NoParams)
        return cls(name)

    def score(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,  # noqa: ARG002 - protocol
        endpoints: Sequence[EndpointState],
    ) -> Sequence[float]:
        return inverted_min_max([e.metrics.waiting for e in endpoints])
