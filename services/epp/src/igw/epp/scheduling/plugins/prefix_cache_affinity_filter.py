"""`prefix-cache-affinity-filter`: keeps only the endpoints that hold most of the prompt prefix.

Keeps endpoints whose prefix match ratio (from `PrefixCacheMatchInfo`) is at least
`affinityThreshold`; when none qualifies it is a no-op. With probability
`explorationProbability` it lets every endpoint through, so other endpoints can warm up.
`maxTTFTPenaltyMs` bounds a penalty computed from predicted latency upstream; igw has no latency
predictor, so it is validated and otherwise unused.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import msgspec

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import AttributeKey, CycleState
from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.params import Params, decode_params
from igw.epp.scheduling.attributes import PREFIX_CACHE_MATCH

__all__ = ["PrefixCacheAffinityFilter", "PrefixCacheAffinityFilterParams"]


class PrefixCacheAffinityFilterParams(Params, frozen=True):
    affinity_threshold: float = 0.80
    exploration_probability: float = 0.01
    max_ttft_penalty_ms: float = msgspec.field(default=5000, name="maxTTFTPenaltyMs")


class PrefixCacheAffinityFilter:
    type_name: ClassVar[str] = "prefix-cache-affinity-filter"
    consumes: ClassVar[tuple[AttributeKey[Any], ...]] = (PREFIX_CACHE_MATCH,)

    def __init__(
        self,
        name: str = type_name,
        *,
        rng: random.Random,
        affinity_threshold: float = 0.80,
        exploration_probability: float = 0.01,
    ) -> None:
        if not 0.0 <= exploration_probability <= 1.0:
            raise ValueError("explorationProbability must be within [0, 1]")
        self.name = name
        self.rng = rng
        self.threshold = affinity_threshold
        self.exploration = exploration_probability

    @classmethod
    def from_config(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> Self:
        p = decode_params(params, PrefixCacheAffinityFilterParams)
        return cls(
            name, rng=handle.rng, affinity_threshold=p.affinity_threshold,
            exploration_probability=p.exploration_probability,
        )  # fmt: skip

    def filter(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,
        endpoints: Sequence[EndpointState],
    ) -> Sequence[EndpointState]:
        matches = state.attributes(PREFIX_CACHE_MATCH)
        if not matches or (self.exploration > 0 and self.rng.random() < self.exploration):
            return endpoints
        kept = [
            e
            for e in endpoints
            if (m := matches.get(e.endpoint.name)) is not None and m.ratio >= self.threshold
        ]
        return kept or endpoints
