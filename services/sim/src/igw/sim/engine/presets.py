"""Hardware profiles: the cost coefficients and capacities of a few real deployments.

Each number carries its source. Two kinds of source are used:

- llm-d-inference-sim's `docs/latency-profiles.md` (tables of latencies "gathered from publicly
  available benchmarks of vLLM, MLPerf, and GPU vendors", quoted in reference/peers.md §1.3) for
  batch-1 TTFT, ITL and the prefill overhead / per-token split;
- first principles for what those tables lack, i.e. how decode slows as the batch grows: a decode
  step reads the weights once (`decode_base_s`), does ~2 FLOPs per parameter per sequence
  (`decode_per_seq_s`), and reads every context token's KV (`decode_per_kv_token_s`, KV bytes per
  token / effective HBM bandwidth). H100 SXM: 3.35 TB/s HBM3 (taken as 2.5 TB/s effective) and
  989 TFLOP/s dense BF16 (taken as ~400 TFLOP/s effective).

vLLM's scheduler defaults (`EngineArgs.get_batch_defaults`, OpenAI server on a >= 70 GiB GPU that
is not an A100): `max_num_seqs` 1024 and `max_num_batched_tokens` 8192; block size 16.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from igw.sim.engine.timing import TimingProfile

__all__ = ["DEFAULT_PRESET", "PRESETS", "Preset"]


@dataclass(frozen=True, slots=True)
class Preset:
    """A named deployment profile: defaults for an `EngineConfig`."""

    name: str
    model_name: str
    description: str
    timing: TimingProfile
    num_gpu_blocks: int
    block_size: int
    max_num_seqs: int
    max_num_batched_tokens: int
    max_model_len: int


LLAMA_8B_H100 = Preset(
    name="llama-3.1-8b-h100",
    model_name="meta-llama/Llama-3.1-8B-Instruct",
    description="Llama-3.1-8B, BF16, one H100 80GB",
    timing=TimingProfile(
        # latency-profiles.md, 7-8B on H100: overhead 25-40 ms + 0.15-0.30 ms/token; its
        # "8B-class on H100" profile uses 30 ms + 0.25 ms (a 256-token prompt: 94 ms TTFT,
        # inside the table's 60-120 ms).
        prefill_overhead_s=0.030,
        prefill_per_token_s=0.000_25,
        # Batch-1 ITL 10-15 ms (same table; the profile uses 12 ms): base + tiny terms ~= 12 ms.
        decode_base_s=0.011_9,
        # 2 x 8.0e9 FLOP per token / 400 TFLOP/s.
        decode_per_seq_s=0.000_04,
        # 128 KiB of KV per token (2 x 32 layers x 8 KV heads x 128 x 2 bytes) / 2.5 TB/s.
        decode_per_kv_token_s=5.2e-8,
    ),
    # 307,328 KV tokens per pod: llm-d-kv-cache's "73 % capacity" benchmark pods (peers.md §3,
    # W1). Cross-check: (0.9 x 80 GB - 16 GB weights - ~6 GB activations) / 128 KiB ~= 380k.
    num_gpu_blocks=19_208,
    block_size=16,
    max_num_seqs=1024,
    max_num_batched_tokens=8192,
    max_model_len=131_072,  # Llama 3.1 context length
)

LLAMA_70B_4XH100 = Preset(
    name="llama-3.1-70b-4xh100",
    model_name="meta-llama/Llama-3.1-70B-Instruct",
    description="Llama-3.1-70B, BF16, tensor-parallel on four H100 80GB",
    timing=TimingProfile(
        # latency-profiles.md, 70B TP=4 on H100: overhead 70-110 ms + 0.60-0.90 ms/token
        # (midpoints; a 256-token prompt: 282 ms, inside the table's 250-400 ms TTFT).
        prefill_overhead_s=0.090,
        prefill_per_token_s=0.000_75,
        # Batch-1 ITL 25-40 ms (same table): ~30 ms.
        decode_base_s=0.029_9,
        # 2 x 70.6e9 FLOP per token / (4 x 400 TFLOP/s).
        decode_per_seq_s=0.000_09,
        # 320 KiB of KV per token (2 x 80 layers x 8 KV heads x 128 x 2 bytes) / (4 x 2.5 TB/s).
        decode_per_kv_token_s=3.3e-8,
    ),
    # (4 x 0.9 x 80 GB - 141 GB weights - 4 x ~6 GB activations) / 320 KiB ~= 375k tokens.
    num_gpu_blocks=23_460,
    block_size=16,
    max_num_seqs=1024,
    max_num_batched_tokens=8192,
    max_model_len=131_072,
)

TINY = Preset(
    name="tiny",
    model_name="igw-sim/tiny",
    description="not a real model: round numbers large enough to measure each effect in tests",
    timing=TimingProfile(
        prefill_overhead_s=0.010,
        prefill_per_token_s=0.000_1,
        decode_base_s=0.005,
        decode_per_seq_s=0.000_5,
        decode_per_kv_token_s=2e-6,
    ),
    num_gpu_blocks=512,
    block_size=16,
    max_num_seqs=16,
    max_num_batched_tokens=2048,
    max_model_len=4096,
)

PRESETS: Mapping[str, Preset] = MappingProxyType(
    {preset.name: preset for preset in (LLAMA_8B_H100, LLAMA_70B_4XH100, TINY)}
)
"""Every preset by name."""

DEFAULT_PRESET = LLAMA_8B_H100.name
