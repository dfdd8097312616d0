"""The paged KV cache with prefix caching, as vLLM keeps it.

`num_blocks` blocks of `block_size` tokens. A sequence holds the blocks that cover its tokens
(prompt and generated so far) in its `BlockTable`, and gets one more each time it crosses a block
boundary. A block filled entirely with prompt tokens is registered under a hash chained from the
start of the prompt: `h_i = hash((h_{i-1}, tokens of block i))`, with `h_{-1}` derived from the
LoRA adapter's name, so equal prompt prefixes on the same adapter map to the same blocks and an
adapter never reads the base model's KV. Blocks filled while decoding are not registered: the
engine does not know the ids the server will render its answer as.

A block is in exactly one of three places:

- held: referenced by one or more sequences (prefix hits share blocks);
- cached: no longer referenced but still registered, in least-recently-freed order; a later
  prompt with the same prefix takes it back;
- empty: never registered, or its registration was evicted.

New blocks come from `empty` first, then by evicting the least recently freed cached block.
A sequence frees its blocks tail first, so a prompt's shared head outlives its private tail.
`usage` is held blocks / all blocks, what vLLM exports as `kv_cache_usage_perc`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["BlockTable", "KVCache"]


@dataclass(slots=True)
class BlockTable:
    """One sequence's view of the cache: its prompt's block hashes and the blocks it holds."""

    hashes: tuple[int, ...]
    """Hash chain of the prompt's full blocks (from `KVCache.prompt_hashes`)."""
    prompt_tokens: int
    blocks: list[int] = field(default_factory=list)
    registered: int = 0
    """Leading blocks of `blocks` whose hash has been looked up or registered."""


class KVCache:
    """Block allocator with prefix caching. Not thread-safe; owned by one engine."""

    def __init__(self, num_blocks: int, block_size: int) -> None:
        self.num_blocks = num_blocks
        self.block_size = block_size
        self._refs = [0] * num_blocks
        self._hash_of: list[int | None] = [None] * num_blocks
        self._by_hash: dict[int, int] = {}
        self._cached: OrderedDict[int, None] = OrderedDict()
        # Popped from the end: block 0 is handed out first, which keeps tests readable.
        self._empty = list(range(num_blocks - 1, -1, -1))
        self.queries = 0
        """Prompt tokens looked up in the prefix cache (cumulative)."""
        self.hits = 0
        """Of those, tokens found cached (cumulative)."""

    @property
    def free_blocks(self) -> int:
        """Blocks a new allocation may take: empty ones plus evictable cached ones."""
        return len(self._empty) + len(self._cached)

    @property
    def cached_blocks(self) -> int:
        """Unreferenced blocks still registered for prefix reuse."""
        return len(self._cached)

    @property
    def usage(self) -> float:
        return (self.num_blocks - self.free_blocks) / self.num_blocks

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    def prompt_hashes(self, tokens: Sequence[int], lora: str | None) -> tuple[int, ...]:
        """The hash chain over the full blocks of `tokens`."""
        size = self.block_size
        parent = hash(("igw-sim-kv", lora))
        chain = []
        for start in range(0, len(tokens) - size + 1, size):
            parent = hash((parent, tuple(tokens[start : start + size])))
            chain.append(parent)
        return tuple(chain)

    def is_cached(self, block_hash: int) -> bool:
        """A block with this hash is registered (held or cached): a prompt would reuse it."""
        return block_hash in self._by_hash

    def cached_prefix(self, table: BlockTable, max_tokens: int) -> list[int]:
        """Leading blocks of the table's prompt already in the cache, at most `max_tokens` worth.

        Pure lookup; `admit` takes the blocks."""
        limit = min(len(table.hashes), max_tokens // self.block_size)
        found = []
        for block_hash in table.hashes[:limit]:
            block = self._by_hash.get(block_hash)
            if block is None:
                break
            found.append(block)
        return found

    def admit(self, table: BlockTable, hits: list[int], tokens: int, *, count: bool) -> bool:
        """Gives an empty table the `hits` (from `cached_prefix`) plus new blocks covering
        `tokens` tokens. All or nothing: False, and nothing changes, if blocks are short.

        With `count`, the prompt is counted in `queries` and the hits in `hits` (vLLM counts a
        request once, not again after a preemption)."""
        needed = self.blocks_for(tokens) - len(hits)
        revived = sum(1 for block in hits if self._refs[block] == 0)
        if needed > self.free_blocks - revived:
            return False
        for block in hits:
            if self._refs[block] == 0:
                del self._cached[block]
            self._refs[block] += 1
        table.blocks = list(hits)
        table.registered = len(hits)
        self._take(table, needed, tokens)
        if count:
            self.queries += table.prompt_tokens
            self.hits += len(hits) * self.block_size
        return True

    def grow(self, table: BlockTable, tokens: int) -> bool:
        """Makes the table cover `tokens` tokens; False, and no change, if blocks are short."""
        needed = self.blocks_for(tokens) - len(table.blocks)
        if needed > self.free_blocks:
            return False
        self._take(table, needed, tokens)
        return True

    def free(self, table: BlockTable) -> None:
        """Releases the table's blocks, tail first; registered ones stay cached."""
        for block in reversed(table.blocks):
            self._refs[block] -= 1
            if self._refs[block] == 0:
                if self._hash_of[block] is None:
                    self._empty.append(block)
                else:
                    self._cached[block] = None
        table.blocks = []
        table.registered = 0

    def _take(self, table: BlockTable, needed: int, tokens: int) -> None:
        for _ in range(needed):
            table.blocks.append(self._new_block())
        full = min(tokens, table.prompt_tokens) // self.block_size
        while table.registered < full:
            self._register(table.blocks[table.registered], table.hashes[table.registered])
            table.registered += 1

    def _new_block(self) -> int:
        if self._empty:
            block = self._empty.pop()
        else:
            block, _ = self._cached.popitem(last=False)
            evicted = self._hash_of[block]
            if evicted is not None:  # always: only registered blocks are cached
                del self._by_hash[evicted]
            self._hash_of[block] = None
        self._refs[block] = 1
        return block

    def _register(self, block: int, block_hash: int) -> None:
        # A prefix computed twice (its first copy was still being looked up when the second was
        # admitted, or the hit limit stopped short of it) keeps its first registration.
        if block_hash not in self._by_hash:
            self._by_hash[block_hash] = block
            self._hash_of[block] = block_hash
