"""`token-load-scorer`: prefers endpoints with fewer in-flight tokens.

Score = `1 - min(1, inflightTokens / queueThresholdTokens)` from the `InFlightLoad` attribute
that `inflight-load-producer` writes (auto-created when absent); no attribute -> 1.0 (idle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import AttributeKey, CycleState
from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.params import Params, decode_params
from igw.epp.scheduling.attributes import INFLIGHT_LOAD

__all__ = ["TokenLoadScorer", "TokenLoadScorerParams"]


class TokenLoadScorerParams(Params, frozen=True):
    queue_threshold_tokens: int = 4_194_304


class TokenLoadScorer:
    type_name: ClassVar[str] = "token-load-scorer"
    category: ClassVar[Literal["distribution", "affinity"]] = "distribution"
    consumes: ClassVar[tuple[AttributeKey[Any], ...]] = (INFLIGHT_LOAD,)

    def __init__(self, name: str = type_name, queue_threshold_tokens: int = 4_194_304) -> None:
        if queue_threshold_tokens <= 0:
            raise ValueError(f"queueThresholdTokens must be positive, got {queue_threshold_tokens}")
        self.name = name
        self.threshold = queue_threshold_tokens

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: PluginHandle,  # noqa: ARG003 - protocol
    ) -> Self:
        p = decode_params(params, TokenLoadScorerParams)
        return cls(name, p.queue_threshold_tokens)

    def score(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,
        endpoints: Sequence[EndpointState],
    ) -> Sequence[float]:
        loads = state.attributes(INFLIGHT_LOAD)
        threshold = self.threshold
        scores: list[float] = []
        for e in endpoints:
            load = loads.get(e.endpoint.name)
            tokens = load.tokens if load is not None else 0
            scores.append(1.0 - min(1.0, tokens / threshold))
        return scores
