"""`predicted-ttft-scorer`: prefers the endpoint predicted to give this request its first token
soonest, at the least delay to the requests that will arrive behind it.

Score = `best / cost` over the candidates' `TtftPrediction.cost_s` (written by
`online-latency-producer`, auto-created when absent): the predicted TTFT plus the delay its
prefill adds to the endpoint's next arrivals (`delay_s`). The cheapest scores 1.0, one twice as
costly 0.5. A candidate without a prediction scores 1.0 (nothing known against it); when none
has one every endpoint scores 1.0. No parameters.

With a TTFT SLO (`x-slo-ttft-ms`, upstream's header), the endpoints whose predicted TTFT meets
it score in [0.5, 1] and the others in [0, 0.25], each group still by `best / cost`: the
request goes where it is predicted to meet its SLO whenever any endpoint is, ahead of an
affinity scorer's weight up to the gap. When none is predicted to meet it, the plain ranking stands.

For `igw-epp explain` it tells each endpoint's prediction and its parts: the learned speed, the
work queued ahead (the in-flight correction included: requests sent since the last scrape) and
this request's own uncached prompt.

igw's own type: upstream's `latency-scorer` scores SLO headroom from a sidecar's predictions,
with bin-packing strategies; this one ranks by the predicted TTFT itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import AttributeKey, CycleState
from igw.epp.framework.params import ParameterlessPlugin
from igw.epp.scheduling.attributes import DISPATCHED_LOAD, PREDICTED_TTFT, TtftPrediction
from igw.epp.scheduling.plugins._slo import slo_seconds

__all__ = ["PredictedTtftScorer"]


class PredictedTtftScorer(ParameterlessPlugin):
    type_name: ClassVar[str] = "predicted-ttft-scorer"
    category: ClassVar[Literal["distribution", "affinity"]] = "distribution"
    consumes: ClassVar[tuple[AttributeKey[Any], ...]] = (PREDICTED_TTFT,)

    def score(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> Sequence[float]:
        predictions = state.attributes(PREDICTED_TTFT)
        ttfts = [predictions.get(e.endpoint.name) for e in endpoints]
        costs = [0.0 if p is None else p.cost_s for p in ttfts]
        known = [c for c, p in zip(costs, ttfts, strict=True) if p is not None]
        if not known:
            return [1.0] * len(endpoints)
        best = min(known)
        scores = [1.0 if c <= 0 else best / c for c in costs]
        slo = slo_seconds(request)
        if slo is None or min(p.ttft_s for p in ttfts if p is not None) > slo:
            return scores
        return [
            0.5 + 0.5 * s if p is None or p.ttft_s <= slo else 0.25 * s
            for s, p in zip(scores, ttfts, strict=True)
        ]

    def score_details(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,
        endpoints: Sequence[EndpointState],
    ) -> Sequence[str]:
        predictions = state.attributes(PREDICTED_TTFT)
        loads = state.attributes(DISPATCHED_LOAD)
        out = []
        for e in endpoints:
            name = e.endpoint.name
            p, load = predictions.get(name), loads.get(name)
            text = "no prediction" if p is None else _prediction(p)
            if load is not None:
                text += (
                    f"; queue {load.waiting} waiting + {load.running} running scraped, "
                    f"+{load.dispatched} sent since"
                )
            out.append(text)
        return out


def _prediction(p: TtftPrediction) -> str:
    step = round(p.ttft_s / p.seconds_per_token) - p.queued_tokens - p.uncached_tokens
    adapter = "" if p.adapter == "none" else f"; adapter {p.adapter}"
    delay = f"; delays later arrivals {p.delay_s * 1000:,.0f} ms" if p.delay_s > 0 else ""
    return (
        f"TTFT {p.ttft_s * 1000:,.0f} ms = {p.seconds_per_token * 1000:.3f} ms/token x "
        f"({step} step + {p.queued_tokens} ahead + {p.uncached_tokens} own uncached)"
        f"{adapter}{delay}"
    )
