"""`prefix-cache-scorer`: prefers endpoints holding more of the request's prompt prefix.

Score = matched blocks / total blocks from the `PrefixCacheMatchInfo` attribute that
`approx-prefix-cache-producer` writes (auto-created when absent); no attribute -> 0.0.

Upstream (§13 #8) silently ignores this scorer's parameters. igw fixes that on purpose: any
parameters given here are rejected unless they are the producer's, in which case the config
loader hands them to the producer it auto-creates (and refuses them when a producer is configured
explicitly, so there is one place where they are set).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import AttributeKey, CycleState
from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.params import decode_params
from igw.epp.scheduling.attributes import PREFIX_CACHE_MATCH
from igw.epp.scheduling.plugins.approx_prefix_cache_producer import PrefixProducerParams

__all__ = ["PrefixCacheScorer"]


class PrefixCacheScorer:
    type_name: ClassVar[str] = "prefix-cache-scorer"
    category: ClassVar[Literal["distribution", "affinity"]] = "affinity"
    consumes: ClassVar[tuple[AttributeKey[Any], ...]] = (PREFIX_CACHE_MATCH,)

    def __init__(self, name: str = type_name, producer_params: Mapping[str, Any] | None = None):
        self.name = name
        self.producer_params: Mapping[str, Any] = dict(producer_params or {})
        """Parameters given to this scorer, for the producer the loader auto-creates."""

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: PluginHandle,  # noqa: ARG003 - protocol
    ) -> Self:
        decode_params(params, PrefixProducerParams)
        return cls(name, params)

    def score(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,
        endpoints: Sequence[EndpointState],
    ) -> Sequence[float]:
        matches = state.attributes(PREFIX_CACHE_MATCH)
        if not matches:
            return [0.0] * len(endpoints)
        scores: list[float] = []
        for e in endpoints:
            match = matches.get(e.endpoint.name)
            scores.append(match.ratio if match is not None else 0.0)
        return scores
