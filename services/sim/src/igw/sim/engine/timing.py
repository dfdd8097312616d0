"""The cost model: how long one engine step takes, in simulated seconds.

A step runs the prefill chunks admitted to it and one decode token for every sequence that is
past its prefill (see the package docstring for the equations). The two parts add up: a step that
mixes a long prefill into a running batch is slower for every sequence in it, which is the
prefill interference users see on real vLLM pods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = ["TimingProfile"]


@dataclass(frozen=True, slots=True)
class TimingProfile:
    """Coefficients of the step cost, all in simulated seconds."""

    prefill_overhead_s: float
    """Paid once by a step that runs any prefill tokens (scheduling, launch, sampling)."""
    prefill_per_token_s: float
    """Per prompt token computed (prefix-cache hits are not computed)."""
    decode_base_s: float
    """Paid once by a step that runs any decode token: reading the weights."""
    decode_per_seq_s: float
    """Per decoding sequence in the batch: its share of the matmuls and sampling."""
    decode_per_kv_token_s: float
    """Per token of context the batch's attention reads from the KV cache."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{field.name} must be a finite number >= 0, got {value!r}")

    def prefill_seconds(self, tokens: int) -> float:
        """Prefill part of a step computing `tokens` uncached prompt tokens (0 if none)."""
        if tokens <= 0:
            return 0.0
        return self.prefill_overhead_s + self.prefill_per_token_s * tokens

    def decode_seconds(self, sequences: int, context_tokens: int) -> float:
        """Decode part of a step producing one token for each of `sequences` sequences whose
        contexts hold `context_tokens` tokens in total (0 if no sequence decodes)."""
        if sequences <= 0:
            return 0.0
        return (
            self.decode_base_s
            + self.decode_per_seq_s * sequences
            + self.decode_per_kv_token_s * context_tokens
        )

    def step_seconds(self, prefill_tokens: int, sequences: int, context_tokens: int) -> float:
        """Simulated duration of one step: prefill part + decode part."""
        return self.prefill_seconds(prefill_tokens) + self.decode_seconds(sequences, context_tokens)
