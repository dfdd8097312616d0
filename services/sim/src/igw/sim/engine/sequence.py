"""`Sequence`: the engine's state of one request over its lifecycle.

    submit -> WAITING -> RUNNING -> FINISHED
                 ^          |
                 +----------+  preempted (blocks freed, recomputed when scheduled again)
    WAITING or RUNNING -> CANCELLED  (the client went away)

Token accounting follows vLLM: `total` tokens exist (prompt plus generated), `computed` of them
have their KV in the cache. A step computes `step_tokens` more; when `computed` reaches `total`
the step samples the next token. So a decoding sequence computes one token per step (the one it
sampled last), and a preempted one recomputes its prompt and everything it generated.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from igw.sim.engine.api import GenerationRequest
from igw.sim.engine.channel import TokenChannel
from igw.sim.engine.kvcache import BlockTable

__all__ = ["Sequence", "SequenceStatus"]


class SequenceStatus(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"


@dataclass(slots=True, eq=False)
class Sequence:
    request: GenerationRequest
    table: BlockTable
    arrival: float
    channel: TokenChannel = field(default_factory=TokenChannel)
    status: SequenceStatus = SequenceStatus.WAITING
    computed: int = 0
    generated: int = 0
    step_tokens: int = 0
    """Tokens scheduled in the step being run."""
    cached_tokens: int | None = None
    """Prompt tokens found in the prefix cache when first scheduled; None before."""
    scheduled: float | None = None
    first_token: float | None = None
    finished: float | None = None

    @property
    def lora(self) -> str | None:
        return self.request.lora

    @property
    def prompt_len(self) -> int:
        return len(self.request.prompt_tokens)

    @property
    def total(self) -> int:
        return len(self.request.prompt_tokens) + self.generated

    @property
    def decoding(self) -> bool:
        """Past its prefill: one token to compute, the one it sampled last."""
        return self.generated > 0 and self.computed == self.total - 1
