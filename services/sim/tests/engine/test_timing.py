"""igw.sim.engine.timing and .presets: the step cost equation and the cited profiles."""

from __future__ import annotations

import pytest

from igw.sim.engine.config import EngineConfig
from igw.sim.engine.presets import PRESETS
from igw.sim.engine.timing import TimingProfile

PROFILE = TimingProfile(
    prefill_overhead_s=0.010,
    prefill_per_token_s=0.001,
    decode_base_s=0.005,
    decode_per_seq_s=0.002,
    decode_per_kv_token_s=0.000_01,
)


@pytest.mark.parametrize(
    ("prefill", "seqs", "context", "seconds"),
    [
        pytest.param(0, 0, 0, 0.0, id="idle"),
        pytest.param(100, 0, 0, 0.010 + 0.100, id="prefill-only"),
        pytest.param(0, 1, 1000, 0.005 + 0.002 + 0.010, id="one-decode"),
        pytest.param(0, 8, 8000, 0.005 + 0.016 + 0.080, id="batch-of-eight"),
        # A prefill joining a decoding batch slows that step for every sequence in it.
        pytest.param(100, 8, 8000, 0.110 + 0.101, id="mixed"),
    ],
)
def test_step_seconds(prefill: int, seqs: int, context: int, seconds: float) -> None:
    assert PROFILE.step_seconds(prefill, seqs, context) == pytest.approx(seconds)


def test_negative_coefficients_are_rejected() -> None:
    with pytest.raises(ValueError, match="decode_base_s must be a finite number >= 0"):
        TimingProfile(0.0, 0.0, -1.0, 0.0, 0.0)


# Batch-1 ranges from llm-d-inference-sim docs/latency-profiles.md (reference/peers.md §1.3):
# TTFT of a 256-token prompt, and inter-token latency.
CITED_RANGES = {
    "llama-3.1-8b-h100": ((0.060, 0.120), (0.010, 0.015)),
    "llama-3.1-70b-4xh100": ((0.250, 0.400), (0.025, 0.040)),
}


@pytest.mark.parametrize("name", sorted(CITED_RANGES))
def test_presets_land_in_their_cited_batch_one_ranges(name: str) -> None:
    (ttft_lo, ttft_hi), (itl_lo, itl_hi) = CITED_RANGES[name]
    timing = PRESETS[name].timing
    assert ttft_lo <= timing.prefill_seconds(256) <= ttft_hi
    assert itl_lo <= timing.decode_seconds(1, 300) <= itl_hi


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_a_valid_config(name: str) -> None:
    config = EngineConfig.from_preset(name)
    assert config.max_model_len <= config.num_gpu_blocks * config.block_size


def test_a_full_8b_batch_decodes_about_three_times_slower_than_one_sequence() -> None:
    """The interference a router should see: 8B/H100, 128 sequences of 2,000 tokens."""
    timing = PRESETS["llama-3.1-8b-h100"].timing
    ratio = timing.decode_seconds(128, 128 * 2000) / timing.decode_seconds(1, 2000)
    assert 2.0 < ratio < 3.5
