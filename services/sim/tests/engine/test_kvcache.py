"""igw.sim.engine.kvcache: block accounting, prefix hits, and least-recently-freed eviction."""

from __future__ import annotations

import pytest

from igw.sim.engine.kvcache import BlockTable, KVCache

BLOCK = 16


def prompt(tokens: int, seed: int = 0) -> tuple[int, ...]:
    return tuple(range(seed << 20, (seed << 20) + tokens))


def table(kv: KVCache, tokens: tuple[int, ...], lora: str | None = None) -> BlockTable:
    return BlockTable(kv.prompt_hashes(tokens, lora), len(tokens))


def run(kv: KVCache, tokens: tuple[int, ...], lora: str | None = None) -> tuple[BlockTable, int]:
    """Admits a prompt as the scheduler does; returns its table and the cached tokens."""
    t = table(kv, tokens, lora)
    hits = kv.cached_prefix(t, len(tokens) - 1)
    assert kv.admit(t, hits, len(tokens), count=True)
    return t, len(hits) * BLOCK


def cached(kv: KVCache, tokens: tuple[int, ...]) -> int:
    """Cached tokens a prompt would get, looked up without allocating."""
    return len(kv.cached_prefix(table(kv, tokens), len(tokens) - 1)) * BLOCK


@pytest.mark.parametrize(
    ("first", "second", "lora", "expected"),
    [
        pytest.param(prompt(100), prompt(100), None, 96, id="same-prompt-full-blocks"),
        pytest.param(prompt(100), prompt(64) + prompt(36, 1), None, 64, id="shared-head"),
        # The last prompt token is always computed, so a prompt of exactly 2 blocks hits 1.
        pytest.param(prompt(32), prompt(32), None, 16, id="last-token-recomputed"),
        pytest.param(prompt(15), prompt(15), None, 0, id="partial-block-not-cached"),
        pytest.param(prompt(100), prompt(100, 1), None, 0, id="unrelated"),
        pytest.param(prompt(100), prompt(100), "adapter", 0, id="other-adapter-misses"),
    ],
)
def test_prefix_hits(
    first: tuple[int, ...], second: tuple[int, ...], lora: str | None, expected: int
) -> None:
    kv = KVCache(num_blocks=64, block_size=BLOCK)
    t, _ = run(kv, first)
    kv.free(t)
    _, hit = run(kv, second, lora)
    assert hit == expected


def test_usage_counts_held_blocks_not_cached_ones() -> None:
    kv = KVCache(num_blocks=10, block_size=BLOCK)
    a, _ = run(kv, prompt(40))  # 3 blocks
    b, _ = run(kv, prompt(20, 1))  # 2 blocks
    assert kv.usage == pytest.approx(0.5)
    kv.free(a)
    assert kv.usage == pytest.approx(0.2)
    assert kv.cached_blocks == 2  # a's two full blocks; its partial third went back empty
    kv.free(b)
    assert kv.usage == 0.0


def test_concurrent_requests_share_prefix_blocks() -> None:
    kv = KVCache(num_blocks=20, block_size=BLOCK)
    run(kv, prompt(160))
    run(kv, prompt(160))
    # The second holds the first's 9 hit blocks plus one of its own for the last chunk.
    assert kv.usage == pytest.approx(11 / 20)


def test_least_recently_freed_blocks_are_evicted_first_tail_first() -> None:
    kv = KVCache(num_blocks=8, block_size=BLOCK)
    a, _ = run(kv, prompt(64))
    b, _ = run(kv, prompt(64, 1))
    kv.free(a)
    kv.free(b)
    # Needs 3 blocks: a's were freed first; a frees its tail first, so a keeps its head.
    c, _ = run(kv, prompt(48, 2))
    kv.free(c)
    assert cached(kv, prompt(64, 1)) == 48  # b intact (its last block is recomputed anyway)
    assert cached(kv, prompt(64)) == 16  # a lost 3 of its 4 blocks


def test_admit_is_all_or_nothing() -> None:
    kv = KVCache(num_blocks=4, block_size=BLOCK)
    run(kv, prompt(48))
    t = table(kv, prompt(48, 1))
    assert not kv.admit(t, [], 48, count=True)
    assert (kv.free_blocks, t.blocks, kv.queries) == (1, [], 48)


def test_revived_cached_blocks_are_not_counted_twice() -> None:
    kv = KVCache(num_blocks=4, block_size=BLOCK)
    a, _ = run(kv, prompt(64))
    kv.free(a)
    # 3 hits revive 3 of the 4 free blocks; the 4th block is the only one left to take.
    t = table(kv, prompt(64))
    hits = kv.cached_prefix(t, 63)
    assert not kv.admit(t, hits, 80, count=False)
    assert kv.admit(t, hits, 64, count=False)


def test_grow_adds_a_block_at_each_boundary_and_fails_when_full() -> None:
    kv = KVCache(num_blocks=3, block_size=BLOCK)
    t, _ = run(kv, prompt(16))
    assert kv.grow(t, 17)
    assert len(t.blocks) == 2
    assert kv.grow(t, 48)
    assert not kv.grow(t, 49)
    assert len(t.blocks) == 3


def test_counters_are_in_tokens_and_skip_uncounted_admissions() -> None:
    kv = KVCache(num_blocks=64, block_size=BLOCK)
    a, _ = run(kv, prompt(100))
    kv.free(a)
    run(kv, prompt(100))
    t = table(kv, prompt(100))
    assert kv.admit(t, kv.cached_prefix(t, 99), 100, count=False)  # a preempted one, again
    assert (kv.queries, kv.hits) == (200, 96)
