"""`lora-affinity-scorer`: prefers endpoints where the requested LoRA adapter is (or can be) loaded.

Per endpoint, for the request's target model taken as the adapter name:
1.0 if it is running there; else 0.8 if the endpoint has room for another adapter
(`|active| + |waiting| < max_lora`); else 0.6 if it is waiting to be loaded there; else 0.0.
No parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.framework.params import ParameterlessPlugin

__all__ = ["LoraAffinityScorer"]


class LoraAffinityScorer(ParameterlessPlugin):
    type_name: ClassVar[str] = "lora-affinity-scorer"
    category: ClassVar[Literal["distribution", "affinity"]] = "affinity"

    def score(
        self,
        request: InferenceRequest,
        state: CycleState,  # noqa: ARG002 - protocol
        endpoints: Sequence[EndpointState],
    ) -> Sequence[float]:
        adapter = request.target_model
        scores: list[float] = []
        for e in endpoints:
            m = e.metrics
            if adapter in m.active_models:
                scores.append(1.0)
            elif len(m.active_models) + len(m.waiting_models) < m.max_active_models:
                scores.append(0.8)
            elif adapter in m.waiting_models:
                scores.append(0.6)
            else:
                scores.append(0.0)
        return scores
