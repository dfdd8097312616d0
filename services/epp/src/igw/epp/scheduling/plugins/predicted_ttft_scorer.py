"""`predicted-ttft-scorer`: prefers the endpoint predicted to give this request its first token
soonest.

Score = `best / predicted` over the candidates' `TtftPrediction.ttft_s` (written by
`online-latency-producer`, auto-created when absent): the fastest scores 1.0, one predicted
twice as slow 0.5. A candidate without a prediction scores 1.0 (nothing known against it);
when none has one every endpoint scores 1.0. No parameters.

igw's own type: upstream's `latency-scorer` scores SLO headroom from a sidecar's predictions,
with bin-packing strategies; this one ranks by the predicted TTFT itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import AttributeKey, CycleState
from igw.epp.framework.params import ParameterlessPlugin
from igw.epp.scheduling.attributes import PREDICTED_TTFT

__all__ = ["PredictedTtftScorer"]


class PredictedTtftScorer(ParameterlessPlugin):
    type_name: ClassVar[str] = "predicted-ttft-scorer"
    category: ClassVar[Literal["distribution", "affinity"]] = "distribution"
    consumes: ClassVar[tuple[AttributeKey[Any], ...]] = (PREDICTED_TTFT,)

    def score(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,
        endpoints: Sequence[EndpointState],
    ) -> Sequence[float]:
        predictions = state.attributes(PREDICTED_TTFT)
        ttfts = [predictions.get(e.endpoint.name) for e in endpoints]
        known = [p.ttft_s for p in ttfts if p is not None]
        if not known:
            return [1.0] * len(endpoints)
        best = min(known)
        return [1.0 if p is None or p.ttft_s <= 0 else best / p.ttft_s for p in ttfts]
