"""`latency-slo-admitter`: sheds a sheddable request no endpoint is predicted to serve within its
TTFT SLO (upstream's type name and role).

A request with priority < 0 and an `x-slo-ttft-ms` header is denied (answered as upstream's
admitters are: 500, "request cannot be admitted") unless some candidate is predicted to meet the
SLO (`TtftPrediction`, from `online-latency-producer`, auto-created) or is idle (nothing
running, waiting or sent since its scrape). Requests of priority >= 0, or without the header,
are always admitted. No parameters. Upstream's version also admits when an endpoint's KV cache
is under 2 % and asks the latency-predictor sidecar; this one asks the online model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import AttributeKey, CycleState
from igw.epp.framework.params import ParameterlessPlugin
from igw.epp.scheduling.attributes import DISPATCHED_LOAD, PREDICTED_TTFT
from igw.epp.scheduling.plugins._slo import slo_seconds

__all__ = ["LatencySloAdmitter"]


class LatencySloAdmitter(ParameterlessPlugin):
    type_name: ClassVar[str] = "latency-slo-admitter"
    consumes: ClassVar[tuple[AttributeKey[Any], ...]] = (PREDICTED_TTFT, DISPATCHED_LOAD)

    def admit_request(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> str | None:
        if request.priority >= 0:
            return None
        slo = slo_seconds(request)
        if slo is None:
            return None
        predictions = state.attributes(PREDICTED_TTFT)
        loads = state.attributes(DISPATCHED_LOAD)
        for e in endpoints:
            name = e.endpoint.name
            prediction, load = predictions.get(name), loads.get(name)
            if prediction is None or prediction.ttft_s <= slo:
                return None
            if load is not None and load.requests == 0:
                return None
        return f"no endpoint is predicted to meet the TTFT SLO of {slo * 1000:.0f} ms"
