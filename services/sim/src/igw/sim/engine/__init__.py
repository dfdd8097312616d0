"""The simulated engine: vLLM's scheduling, KV cache and timing, without a GPU.

The HTTP layer talks to it only through `igw.sim.engine.api`. One `Engine` is one pod (or one
data-parallel rank); each runs one asyncio task. All times are simulated seconds; the wall clock
runs `time_scale` times slower.

Tokens (`igw.sim.tokenizer`)
    prompt_tokens = ceil(UTF-8 bytes of the rendered prompt / 4)

KV cache (`kvcache`)
    blocks held by a running request = ceil((prompt_tokens + generated) / block_size)
    kv_cache_usage = blocks held by running requests / num_gpu_blocks
    cached_tokens = block_size * (leading full prompt blocks whose chained hash is cached),
                    at most prompt_tokens - 1
    Freed blocks stay cached; the least recently freed is evicted when a new block is needed.

Continuous batching (`scheduler`), per step, with budget B = max_num_batched_tokens:
    running requests first: 1 token each while decoding, else min(rest of prompt, budget);
      no block for one of them -> preempt the youngest running request (recomputed later)
    then waiting requests, FIFO, while running < max_num_seqs and budget > 0:
      needs blocks for ceil((cached + chunk) / block_size) - cached blocks, and an adapter slot

Step cost (`timing`, presets in `presets`)
    step_seconds = P + D + L
      P = prefill_overhead_s + prefill_per_token_s * uncached prompt tokens in the step
                                                         (0 if the step has no prefill)
      D = decode_base_s + decode_per_seq_s * n + decode_per_kv_token_s * sum(context of the n)
                                            (n decoding sequences; 0 if n = 0)
      L = lora_load_latency_s * adapters loaded by the step
    wall seconds = step_seconds / time_scale

What follows, as the tests measure it:
    TTFT on an idle pod          = P(prompt - cached) (+ L for a non-resident adapter)
    TTFT behind a queue          grows by the steps of the requests ahead of it
    time per output token        = D(batch, context) (+ P of any prefill sharing the step):
                                   a busy pod is really slower
    requests beyond max_num_seqs, budget, KV blocks or adapter slots wait in the queue
"""

from __future__ import annotations

from igw.sim.engine.api import (
    AdapterError,
    EngineFullError,
    EngineSnapshot,
    GenerationRequest,
    RequestHandle,
    RequestTimings,
    SimEngine,
    TokenEvent,
)
from igw.sim.engine.config import EngineConfig
from igw.sim.engine.engine import Engine, RoutingState
from igw.sim.engine.presets import DEFAULT_PRESET, PRESETS, Preset
from igw.sim.engine.timing import TimingProfile

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "AdapterError",
    "Engine",
    "EngineConfig",
    "EngineFullError",
    "EngineSnapshot",
    "GenerationRequest",
    "Preset",
    "RequestHandle",
    "RequestTimings",
    "RoutingState",
    "SimEngine",
    "TimingProfile",
    "TokenEvent",
]
