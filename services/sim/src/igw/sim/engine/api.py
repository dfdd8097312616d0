"""The contract between the simulated engine and the HTTP surface that serves it.

The HTTP layer (`igw.sim.server`) tokenizes a request, submits a `GenerationRequest` and streams
the `TokenEvent`s of the returned `RequestHandle`; it reads `EngineSnapshot` for `/metrics`. The
engine (`igw.sim.engine`) owns all simulated state and time. Nothing else crosses this line.

Times are engine-clock seconds (`Engine.now()`), i.e. simulated time: with `time_scale` 10 the
engine runs ten times faster than the wall clock and every duration here is still reported in
simulated seconds, so metrics and usage look like the real model's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "AdapterError",
    "EngineFullError",
    "EngineSnapshot",
    "GenerationRequest",
    "RequestHandle",
    "RequestTimings",
    "SimEngine",
    "TokenEvent",
]


class EngineFullError(Exception):
    """The waiting queue is at `max_waiting_queue_length`: the server answers 429."""


class AdapterError(Exception):
    """An unknown or unloadable LoRA adapter: the server answers 404 (unknown) or 400."""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    request_id: str
    prompt_tokens: tuple[int, ...]
    """Token ids from `igw.sim.tokenizer`; equal prefixes give equal ids."""
    max_tokens: int
    """Output tokens to generate (the server resolves defaults and the context limit)."""
    lora: str | None = None
    """Adapter name, or None for the base model."""


@dataclass(frozen=True, slots=True)
class TokenEvent:
    index: int
    """0 for the first output token."""
    time: float
    """Engine-clock time the token was produced."""
    finish_reason: str | None = None
    """Set on the last event only: "length" (max_tokens reached) or "stop"."""


@dataclass(frozen=True, slots=True)
class RequestTimings:
    arrival: float
    scheduled: float | None
    """When the request left the waiting queue (first time, if preempted later)."""
    first_token: float | None
    finished: float | None


class RequestHandle(Protocol):
    """One submitted request. Iterate it for tokens; the iteration ends after the last one."""

    request_id: str
    prompt_tokens: int

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens served from the prefix cache (known once the request is scheduled)."""

    @property
    def timings(self) -> RequestTimings: ...

    def __aiter__(self) -> AsyncIterator[TokenEvent]: ...

    def cancel(self) -> None:
        """The client went away: free the request's slot and blocks at once. Idempotent."""


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """The engine's state at one instant, consistent across fields."""

    model_name: str
    running: int
    waiting: int
    kv_cache_usage: float
    """Used blocks / total blocks, 0.0-1.0 (what vLLM reports as kv_cache_usage_perc)."""
    num_gpu_blocks: int
    block_size: int
    max_loras: int
    running_loras: tuple[str, ...]
    waiting_loras: tuple[str, ...]
    loaded_loras: tuple[str, ...]
    prefix_cache_queries: int
    """Prompt tokens looked up in the prefix cache, cumulative (vLLM counts tokens)."""
    prefix_cache_hits: int
    """Of those, tokens found, cumulative."""
    prompt_tokens: int
    generation_tokens: int
    preemptions: int


class SimEngine(Protocol):
    """What the HTTP layer needs from an engine (one engine per simulated pod / DP rank)."""

    def now(self) -> float: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def submit(self, request: GenerationRequest) -> RequestHandle:
        """Queues the request; raises `EngineFullError` or `AdapterError`."""

    def snapshot(self) -> EngineSnapshot: ...

    async def load_lora(self, name: str) -> None:
        """Registers an adapter (it becomes resident on first use or now if a slot is free)."""

    async def unload_lora(self, name: str) -> None:
        """Forgets an adapter; raises `AdapterError` if it is unknown."""

    def known_loras(self) -> tuple[str, ...]: ...
