"""`approx-prefix-cache-producer`: guesses which endpoints hold the request's prompt prefix (§3.6).

PrepareData hashes the prompt into a chain of blocks (`blockSizeTokens` x 4 characters each, at
most `maxPrefixBlocksToMatch` blocks, or `maxPrefixTokensToMatch / blockSizeTokens` when that is
set) and writes each endpoint's `PrefixCacheMatchInfo`. PreRequest then records the blocks as
cached on the primary target (and on the target of a profile named `prefill`). With `autoTune`,
the block size comes from the first candidate's `cache_block_size` and each endpoint's LRU
capacity from its `cache_num_blocks`, when the server reports them.

`on_insert`, when set, hears of each PreRequest insert (`igw.epp.workers` sends them to the other
processes, which apply them with `index.add`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import msgspec

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import AttributeKey, CycleState, StateKey
from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.metrics import SchedulerMetrics
from igw.epp.framework.params import Params, decode_params
from igw.epp.framework.results import SchedulingResult
from igw.epp.scheduling.attributes import PREFIX_CACHE_MATCH, PrefixCacheMatchInfo
from igw.epp.scheduling.plugins._prefix_index import PrefixIndex, prefix_hashes

__all__ = ["ApproxPrefixCacheProducer", "PrefixProducerParams"]

_PREFILL_PROFILE = "prefill"


class PrefixProducerParams(Params, frozen=True):
    auto_tune: bool = True
    block_size_tokens: int | msgspec.UnsetType = msgspec.UNSET
    """16 when unset; unset is told apart only to reject a lone deprecated `blockSize`."""
    max_prefix_blocks_to_match: int = 256
    max_prefix_tokens_to_match: int = 0
    lru_capacity_per_server: int = 31250
    block_size: int | None = None
    """Deprecated upstream (it was in characters); refused without `blockSizeTokens`."""


@dataclass(frozen=True, slots=True)
class _RequestBlocks:
    hashes: list[int]


_BLOCKS: StateKey[_RequestBlocks] = StateKey("approx-prefix-cache-producer/blocks")


class ApproxPrefixCacheProducer:
    type_name: ClassVar[str] = "approx-prefix-cache-producer"
    produces: ClassVar[tuple[AttributeKey[Any], ...]] = (PREFIX_CACHE_MATCH,)
    consumes: ClassVar[tuple[AttributeKey[Any], ...]] = ()

    def __init__(
        self,
        name: str = type_name,
        *,
        metrics: SchedulerMetrics | None = None,
        auto_tune: bool = True,
        block_size_tokens: int = 16,
        max_prefix_blocks: int = 256,
        max_prefix_tokens: int = 0,
        lru_capacity_per_server: int = 31250,
    ) -> None:
        if block_size_tokens <= 0 or max_prefix_blocks <= 0 or lru_capacity_per_server <= 0:
            raise ValueError(
                "blockSizeTokens, maxPrefixBlocksToMatch and lruCapacityPerServer must be positive"
            )
        self.name = name
        self.auto_tune = auto_tune
        self.block_size_tokens = block_size_tokens
        self.max_prefix_blocks = max_prefix_blocks
        self.max_prefix_tokens = max(0, max_prefix_tokens)
        self.lru_capacity = lru_capacity_per_server
        self.index = PrefixIndex()
        self.on_insert: Callable[[str, Sequence[int], int], None] | None = None
        """Called after each local insert with (endpoint, hashes, capacity)."""
        metrics = metrics if metrics is not None else SchedulerMetrics()
        metrics.add_prefix_index(self.index.__len__)
        self._hit_ratio = metrics.prefix_indexer_hit_ratio.observe
        self._hit_bytes = metrics.prefix_indexer_hit_bytes.observe

    @classmethod
    def from_config(cls, name: str, params: Mapping[str, Any], handle: PluginHandle) -> Self:
        p = decode_params(params, PrefixProducerParams)
        if p.block_size is not None and p.block_size_tokens is msgspec.UNSET:
            raise ValueError("blockSize is deprecated: set blockSizeTokens (in tokens) instead")
        block_tokens = 16 if p.block_size_tokens is msgspec.UNSET else p.block_size_tokens
        return cls(
            name, metrics=handle.metrics, auto_tune=p.auto_tune, block_size_tokens=block_tokens,
            max_prefix_blocks=p.max_prefix_blocks_to_match,
            max_prefix_tokens=p.max_prefix_tokens_to_match,
            lru_capacity_per_server=p.lru_capacity_per_server,
        )  # fmt: skip

    def block_size_for(self, endpoints: Sequence[EndpointState]) -> int:
        """Tokens per block for this request: the first candidate's, when auto-tuned."""
        if self.auto_tune and endpoints and endpoints[0].metrics.cache_block_size > 0:
            return endpoints[0].metrics.cache_block_size
        return self.block_size_tokens

    def prepare_data(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> None:
        block_tokens = self.block_size_for(endpoints)
        max_blocks = (
            max(1, self.max_prefix_tokens // block_tokens)
            if self.max_prefix_tokens > 0
            else self.max_prefix_blocks
        )
        hashes = prefix_hashes(
            request.prompt_text, request.target_model, request.cache_salt,
            block_tokens * 4, max_blocks,
        )  # fmt: skip
        state.write(_BLOCKS, _RequestBlocks(hashes))
        if not hashes:
            return
        matches = self.index.match(hashes)
        total = len(hashes)
        for endpoint, matched in matches.items():
            state.set_attribute(PREFIX_CACHE_MATCH, endpoint, PrefixCacheMatchInfo(matched, total))
        best = max(matches.values(), default=0)
        self._hit_ratio(best / total)
        self._hit_bytes(best * block_tokens * 4)

    def pre_request(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,
        result: SchedulingResult,
    ) -> None:
        blocks = state.read(_BLOCKS)
        if blocks is None or not blocks.hashes:
            return
        targets = [result.targets[:1]]
        prefill = result.profile_results.get(_PREFILL_PROFILE)
        if prefill is not None and result.primary_profile != _PREFILL_PROFILE:
            targets.append(prefill.targets[:1])
        for chosen in targets:
            for target in chosen:
                capacity = self._capacity(target)
                self.index.add(target.endpoint.name, blocks.hashes, capacity)
                if self.on_insert is not None:
                    self.on_insert(target.endpoint.name, blocks.hashes, capacity)

    def purge(self, active: Collection[str]) -> None:
        """Forgets endpoints that left the pool; call it periodically (upstream: every 2 min)."""
        self.index.purge(active)

    def _capacity(self, target: EndpointState) -> int:
        if self.auto_tune and target.metrics.cache_num_blocks > 0:
            return target.metrics.cache_num_blocks
        return self.lru_capacity
