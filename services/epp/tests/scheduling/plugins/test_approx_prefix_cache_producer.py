"""`approx-prefix-cache-producer`: the §3.6 hash chain, matching, LRU and autoTune."""

import struct

import msgspec
import pytest
import xxhash

from igw.epp.framework import (
    CycleState,
    PluginHandle,
    ProfileResult,
    SchedulerMetrics,
    SchedulingResult,
)
from igw.epp.scheduling import PREFIX_CACHE_MATCH, PrefixCacheMatchInfo
from igw.epp.scheduling.plugins import ApproxPrefixCacheProducer
from igw.epp.scheduling.plugins._prefix_index import prefix_hashes
from igw.epp.testing.builders import endpoint, endpoints, request

BLOCK = 16 * 4  # characters per block at the default 16 tokens


def test_hash_chain_matches_an_independent_computation() -> None:
    text = "a" * BLOCK + "b" * BLOCK + "tail"  # two full blocks and a partial one
    seed = xxhash.xxh64(b"my-model" + b"salt").intdigest()
    h1 = xxhash.xxh64(b"a" * BLOCK + struct.pack("<Q", seed)).intdigest()
    h2 = xxhash.xxh64(b"b" * BLOCK + struct.pack("<Q", h1)).intdigest()
    h3 = xxhash.xxh64(b"tail" + struct.pack("<Q", h2)).intdigest()
    assert prefix_hashes(text, "my-model", "salt", BLOCK, 256) == [h1, h2, h3]


@pytest.mark.parametrize(
    ("text", "max_blocks", "count"),
    [
        pytest.param("x" * (BLOCK - 1), 256, 0, id="under-one-block"),
        pytest.param("x" * BLOCK, 256, 1, id="one-block"),
        pytest.param("x" * (BLOCK * 5 + 1), 3, 3, id="truncated-to-max-blocks"),
        pytest.param("é" * BLOCK, 256, 2, id="utf8-bytes-not-characters"),
    ],
)
def test_block_count(text: str, max_blocks: int, count: int) -> None:
    assert len(prefix_hashes(text, "m", "", BLOCK, max_blocks)) == count


def test_model_and_salt_change_every_hash() -> None:
    text = "x" * BLOCK * 2
    base = prefix_hashes(text, "m", "", BLOCK, 256)
    assert set(base).isdisjoint(prefix_hashes(text, "m2", "", BLOCK, 256))
    assert set(base).isdisjoint(prefix_hashes(text, "m", "s", BLOCK, 256))


def serve(p: ApproxPrefixCacheProducer, prompt: str, target: str, **metrics: int) -> CycleState:
    """One request through PrepareData and PreRequest, sent to `target`."""
    state = CycleState()
    req = request(prompt=prompt)
    eps = [endpoint(target, **metrics)]  # type: ignore[arg-type]  # keyword pass-through
    p.prepare_data(req, state, eps)
    p.pre_request(req, state, SchedulingResult({"d": ProfileResult((eps[0],))}, "d"))
    return state


def test_matches_after_the_target_served_the_prefix() -> None:
    p = ApproxPrefixCacheProducer(auto_tune=False)
    shared = "s" * BLOCK * 3
    serve(p, shared, "pod-0-rank-0")
    state = CycleState()
    p.prepare_data(request(prompt=shared + "q" * BLOCK), state, endpoints(2))
    assert dict(state.attributes(PREFIX_CACHE_MATCH)) == {
        "pod-0-rank-0": PrefixCacheMatchInfo(3, 4)
    }


def test_lru_evicts_least_recently_used_blocks() -> None:
    p = ApproxPrefixCacheProducer(auto_tune=False, lru_capacity_per_server=2)
    serve(p, "a" * BLOCK * 2, "e")
    serve(p, "b" * BLOCK, "e")  # three hashes now: the first of "a..." is evicted
    assert len(p.index) == 2
    state = CycleState()
    p.prepare_data(request(prompt="a" * BLOCK * 2), state, [endpoint("e")])
    assert state.attributes(PREFIX_CACHE_MATCH) == {}  # the chain breaks at block one


def test_auto_tune_takes_block_size_and_capacity_from_the_endpoint() -> None:
    p = ApproxPrefixCacheProducer(auto_tune=True, block_size_tokens=16, lru_capacity_per_server=99)
    assert p.block_size_for([endpoint(block_size=4)]) == 4
    assert p.block_size_for([endpoint()]) == 16
    serve(p, "z" * 16 * 10, "e", block_size=4, num_blocks=3)  # 10 blocks of 16 chars
    assert len(p.index) == 3


def test_no_auto_tune_ignores_the_endpoint() -> None:
    p = ApproxPrefixCacheProducer(auto_tune=False, lru_capacity_per_server=5)
    serve(p, "z" * BLOCK * 8, "e", block_size=4, num_blocks=1)
    assert len(p.index) == 5


def test_max_prefix_tokens_overrides_max_blocks() -> None:
    p = ApproxPrefixCacheProducer(auto_tune=False, max_prefix_tokens=32)  # 2 blocks of 16
    serve(p, "z" * BLOCK * 8, "e")
    assert len(p.index) == 2


def test_metrics_report_size_and_hits() -> None:
    metrics = SchedulerMetrics()
    p = ApproxPrefixCacheProducer(metrics=metrics, auto_tune=False)
    serve(p, "a" * BLOCK * 2, "e")
    serve(p, "a" * BLOCK * 2, "e")  # second time: full hit
    get = metrics.registry.get_sample_value
    assert get("inference_extension_prefix_indexer_size") == 2
    assert get("inference_extension_prefix_indexer_hit_ratio_count") == 2
    assert get("inference_extension_prefix_indexer_hit_ratio_sum") == 1.0
    assert get("inference_extension_prefix_indexer_hit_bytes_sum") == 2 * BLOCK


def test_params_defaults_and_deprecated_block_size() -> None:
    p = ApproxPrefixCacheProducer.from_config("p", {}, PluginHandle())
    assert (p.auto_tune, p.block_size_tokens, p.max_prefix_blocks, p.lru_capacity) == (
        True, 16, 256, 31250,
    )  # fmt: skip
    with pytest.raises(ValueError, match="blockSizeTokens"):
        ApproxPrefixCacheProducer.from_config("p", {"blockSize": 64}, PluginHandle())
    both = {"blockSize": 64, "blockSizeTokens": 8}
    assert ApproxPrefixCacheProducer.from_config("p", both, PluginHandle()).block_size_tokens == 8
    with pytest.raises(msgspec.ValidationError, match="lruCapacity"):
        ApproxPrefixCacheProducer.from_config("p", {"lruCapacity": 1}, PluginHandle())
