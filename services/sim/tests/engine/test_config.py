"""igw.sim.engine.config: presets, overrides and clear validation errors."""

from __future__ import annotations

import pytest

from igw.sim.engine.config import EngineConfig
from igw.sim.engine.presets import PRESETS


def test_from_preset_applies_engine_and_timing_overrides() -> None:
    config = EngineConfig.from_preset(
        "llama-3.1-8b-h100", max_num_seqs=64, prefill_per_token_s=0.001, time_scale=10
    )
    assert config.model_name == "meta-llama/Llama-3.1-8B-Instruct"
    assert config.max_num_seqs == 64
    assert config.timing.prefill_per_token_s == 0.001
    assert config.timing.decode_base_s == PRESETS["llama-3.1-8b-h100"].timing.decode_base_s
    assert config.time_scale == 10


def test_unset_overrides_are_ignored() -> None:
    assert EngineConfig.from_preset("tiny", max_num_seqs=None) == EngineConfig.from_preset("tiny")


def test_a_smaller_kv_cache_shortens_the_presets_context() -> None:
    assert EngineConfig.from_preset("tiny", num_gpu_blocks=8).max_model_len == 128


def test_an_explicit_context_longer_than_the_cache_is_an_error() -> None:
    with pytest.raises(ValueError, match="does not fit in the KV cache"):
        EngineConfig.from_preset("tiny", num_gpu_blocks=8, max_model_len=4096)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"max_num_seqs": 0}, "max_num_seqs must be >= 1, got 0", id="zero-seqs"),
        pytest.param({"block_size": "16"}, "block_size must be an integer", id="string-int"),
        pytest.param({"max_loras": True}, "max_loras must be an integer", id="bool-int"),
        pytest.param({"time_scale": 0}, "time_scale must be > 0", id="zero-scale"),
        pytest.param(
            {"time_scale": float("inf")}, "time_scale must be a finite number", id="inf-scale"
        ),
        pytest.param(
            {"lora_load_latency_s": -1}, "lora_load_latency_s must be >= 0", id="negative-load"
        ),
        pytest.param(
            {"max_num_seqs": 100, "max_num_batched_tokens": 50},
            "max_num_batched_tokens must be >= 100",
            id="budget-below-seqs",
        ),
        pytest.param({"model_name": ""}, "model_name must be a non-empty", id="empty-model"),
        pytest.param({"decode_base_s": -0.1}, "decode_base_s must be", id="timing-field"),
        pytest.param({"max_num_seq": 4}, "unknown engine option.*max_num_seq", id="typo"),
    ],
)
def test_invalid_options(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EngineConfig.from_preset("tiny", **overrides)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(
        ValueError, match=r"presets: llama-3\.1-70b-4xh100, llama-3\.1-8b-h100, tiny"
    ):
        EngineConfig.from_preset("gpt-5")
