"""`Engine`: one simulated vLLM engine (one pod, or one data-parallel rank) on the event loop.

Ownership and lifecycle: the engine owns its scheduler, KV cache and adapters, and one asyncio
task (`start` creates it, `stop` cancels it and ends every open token stream). Everything runs
on the loop that called `start`; `submit`, `cancel` and `snapshot` are synchronous and never see
a half-finished step, so a snapshot is consistent across its fields.

The task loops: plan a step, sleep its simulated cost scaled by `1 / time_scale`, emit its
tokens. With nothing to run it awaits an event that `submit` sets: an idle engine costs nothing.
Per step the work is O(batch): one `TokenEvent` and one channel put per sequence.

Time: `now()` is `(wall seconds since construction) * time_scale`. Steps are scheduled back to
back on the simulated clock, not on wall-clock wake-ups: step k+1 starts exactly when step k
ended, and the task sleeps until the wall clock catches up with that. Timer jitter and the
millisecond resolution of the loop's timers therefore never accumulate into simulated time, so
the same workload gives the same simulated latencies at any `time_scale` the CPU can keep up
with. If the task falls behind by more than `_MAX_LAG_WALL_S` (an overloaded process, a scale
too high for the CPU), simulated time slips to the present instead of replaying the backlog in
a burst. A step never starts before the arrival of a request it admits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from collections.abc import Sequence as Tokens
from dataclasses import dataclass

from igw.sim.engine.api import (
    AdapterError,
    EngineFullError,
    EngineSnapshot,
    GenerationRequest,
)
from igw.sim.engine.config import EngineConfig
from igw.sim.engine.handle import Handle
from igw.sim.engine.kvcache import BlockTable, KVCache
from igw.sim.engine.lora import AdapterPlan, LoraSlots
from igw.sim.engine.scheduler import Scheduler, Step
from igw.sim.engine.sequence import Sequence

__all__ = ["Engine", "RoutingState"]


@dataclass(frozen=True, slots=True)
class RoutingState:
    """What an ideal router would know about this engine for one prompt, at one instant.

    Not part of the HTTP contract: the benchmark lab's omniscient router (bench/lab) reads it in
    the simulator's process to measure how close a real router, which sees only `/metrics`,
    comes to the best possible decision."""

    cached_tokens: int
    """Leading prompt tokens whose KV blocks this engine holds now (prefix-cache hits)."""
    queued_prefix_tokens: int
    """Leading prompt tokens a waiting request shares: cached by the time this one runs."""
    block_hashes: tuple[int, ...]
    """The prompt's block hash chain here, so that a router can remember what it sent."""
    free_blocks: int
    """Blocks a new request may take: empty plus evictable cached ones."""
    cached_blocks: int
    """Of those, the ones still holding a prefix (a new request evicts them last-freed last)."""
    running: int
    waiting: int
    queued_prefill_tokens: int
    """Prompt tokens not computed yet by the waiting and running requests (work ahead)."""
    decoding: int
    """Running requests past their prefill (each adds to every step's decode cost)."""
    context_tokens: int
    """Tokens the decoding requests' attention reads per step."""
    adapter_ready: bool
    """The prompt's adapter (or the base model) can start without loading or waiting."""
    adapter_blocked: bool
    """Every adapter slot runs requests: the prompt's adapter must wait for one to drain."""


_MAX_LAG_WALL_S = 0.1


def _leading(hashes: tuple[int, ...], ahead: set[int], kv: KVCache | None) -> int:
    """Leading blocks of `hashes` in `ahead` or (with `kv`) registered in the cache."""
    for i, h in enumerate(hashes):
        if h not in ahead and (kv is None or not kv.is_cached(h)):
            return i
    return len(hashes)


class Engine:
    """Implements `SimEngine`."""

    def __init__(
        self,
        config: EngineConfig,
        *,
        loras: Iterable[str] = (),
        max_lag_wall_s: float = _MAX_LAG_WALL_S,
    ) -> None:
        """`loras` are registered and, while slots last, resident from the start.
        `max_lag_wall_s`: how far the task may fall behind the wall clock before simulated time
        slips to the present (`math.inf`: never, so step durations stay exact on a machine too
        busy to keep up, as tests want)."""
        self.config = config
        self._kv = KVCache(config.num_gpu_blocks, config.block_size)
        self._lora = LoraSlots(config.max_loras)
        for name in loras:
            self._lora.register(name)
            self._lora.make_resident(name)
        self._scheduler = Scheduler(config, self._kv, self._lora)
        self._wall_start = time.monotonic()
        self._clock = 0.0
        """Simulated time at which the next step may start."""
        self._max_lag = max_lag_wall_s * config.time_scale
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def now(self) -> float:
        return (time.monotonic() - self._wall_start) * self.config.time_scale

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"igw-sim-engine:{self.config.model_name}"
            )

    async def stop(self) -> None:
        """Stops the loop and ends every open token stream. Idempotent."""
        self._stopped = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._scheduler.close_all()

    def submit(self, request: GenerationRequest) -> Handle:
        """Queues the request. Raises `AdapterError` for an unknown adapter, `EngineFullError`
        when the waiting queue is full, and `ValueError` (with vLLM's wording) for an empty
        prompt, `max_tokens` < 1, or prompt + `max_tokens` over `max_model_len`; `RuntimeError`
        after `stop`. May be called before `start`."""
        if self._stopped:
            raise RuntimeError("the engine is stopped")
        self._validate(request)
        scheduler = self._scheduler
        free_slots = max(0, self.config.max_num_seqs - len(scheduler.running))
        if len(scheduler.waiting) - free_slots >= self.config.max_waiting_queue_length:
            raise EngineFullError(
                f"waiting queue is full ({self.config.max_waiting_queue_length} requests)"
            )
        table = BlockTable(
            self._kv.prompt_hashes(request.prompt_tokens, request.lora),
            len(request.prompt_tokens),
        )
        seq = Sequence(request, table, arrival=self.now())
        scheduler.enqueue(seq)
        self._wake.set()
        return Handle(seq, self._cancel)

    def snapshot(self) -> EngineSnapshot:
        scheduler, kv = self._scheduler, self._kv
        return EngineSnapshot(
            model_name=self.config.model_name,
            running=len(scheduler.running),
            waiting=len(scheduler.waiting),
            kv_cache_usage=kv.usage,
            num_gpu_blocks=kv.num_blocks,
            block_size=kv.block_size,
            max_loras=self.config.max_loras,
            running_loras=self._lora.running(),
            waiting_loras=scheduler.waiting_loras(),
            loaded_loras=self._lora.resident(),
            prefix_cache_queries=kv.queries,
            prefix_cache_hits=kv.hits,
            prompt_tokens=scheduler.prompt_tokens,
            generation_tokens=scheduler.generation_tokens,
            preemptions=scheduler.preemptions,
        )

    def routing_state(
        self,
        prompt_tokens: Tokens[int],
        lora: str | None = None,
        *,
        block_hashes: tuple[int, ...] | None = None,
    ) -> RoutingState:
        """This engine's true state as it concerns a new request with this prompt; O(blocks
        of the prompt and of the waiting requests).

        `block_hashes` may pass the chain another engine of the same block size returned for
        the same prompt and adapter, to spare hashing the prompt again."""
        scheduler, kv = self._scheduler, self._kv
        if block_hashes is None:
            block_hashes = kv.prompt_hashes(prompt_tokens, lora)
        table = BlockTable(block_hashes, len(prompt_tokens))
        cached = len(kv.cached_prefix(table, len(prompt_tokens) - 1)) * kv.block_size
        queued = decoding = context = 0
        for seq in scheduler.running:
            if seq.decoding:
                decoding += 1
                context += seq.computed
            else:
                queued += max(seq.prompt_len - seq.computed, 0)
        # Waiting requests are admitted in order, each finding the blocks of those before it.
        # A hash chain names its whole prefix, so membership of each leading hash suffices.
        ahead: set[int] = set()
        for seq in scheduler.waiting:
            hits = _leading(seq.table.hashes, ahead, kv) * kv.block_size
            queued += max(seq.prompt_len - min(hits, seq.prompt_len - 1) - seq.computed, 0)
            ahead.update(seq.table.hashes)
        shared = _leading(table.hashes, ahead, None)
        plan = self._lora.plan(lora)
        return RoutingState(
            cached_tokens=cached,
            queued_prefix_tokens=min(shared * kv.block_size, len(prompt_tokens) - 1),
            block_hashes=table.hashes,
            free_blocks=kv.free_blocks,
            cached_blocks=kv.cached_blocks,
            running=len(scheduler.running),
            waiting=len(scheduler.waiting),
            queued_prefill_tokens=queued,
            decoding=decoding,
            context_tokens=context,
            adapter_ready=plan is AdapterPlan.READY,
            adapter_blocked=plan is AdapterPlan.BLOCKED,
        )

    async def load_lora(self, name: str) -> None:
        """Registers an adapter; raises `AdapterError` if it is already known. If a slot is
        free the adapter is loaded now and the call takes `lora_load_latency_s` (simulated)."""
        if not name:
            raise AdapterError("an adapter needs a name")
        self._lora.register(name)
        if self._lora.has_free_slot():
            await asyncio.sleep(self.config.lora_load_latency_s / self.config.time_scale)
            self._lora.make_resident(name)

    async def unload_lora(self, name: str) -> None:
        self._lora.unregister(name)

    def known_loras(self) -> tuple[str, ...]:
        return self._lora.known()

    def _validate(self, request: GenerationRequest) -> None:
        if request.lora is not None and not self._lora.is_known(request.lora):
            raise AdapterError(f"The model `{request.lora}` does not exist.")
        prompt = len(request.prompt_tokens)
        if prompt == 0:
            raise ValueError("The prompt cannot be empty.")
        if request.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {request.max_tokens}.")
        limit = self.config.max_model_len
        if prompt + request.max_tokens > limit:
            raise ValueError(
                f"This model's maximum context length is {limit} tokens. However, you "
                f"requested {prompt + request.max_tokens} tokens ({prompt} in the messages, "
                f"{request.max_tokens} in the completion). Please reduce the length of the "
                f"messages or completion."
            )

    def _cancel(self, seq: Sequence) -> None:
        self._scheduler.cancel(seq)
        self._wake.set()  # freed blocks or a freed slot may let a waiting request in

    async def _run(self) -> None:
        scheduler = self._scheduler
        while True:
            step = scheduler.schedule() if scheduler.has_work() else None
            if step is None or not step.sequences:
                await self._idle()
                continue
            end = self._step_start(step) + step.seconds
            delay = (end - self.now()) / self.config.time_scale
            await asyncio.sleep(max(delay, 0.0))
            self._clock = end
            scheduler.complete(step, end)

    async def _idle(self) -> None:
        """Waits for work. The next step then starts at the clock or, later, at the arrival of a
        request it admits (`_step_start`), not when the loop got round to waking this task: the
        wake-up latency of a busy process is not simulated time. Idle for longer than the lag
        allowance, the clock slips to the present there too."""
        self._wake.clear()
        await self._wake.wait()

    def _step_start(self, step: Step) -> float:
        start = self._clock
        if self.now() - start > self._max_lag:
            start = self.now()
        for seq in step.admitted:
            start = max(start, seq.arrival)
        for seq in step.admitted:
            if seq.scheduled is None:
                seq.scheduled = start
        return start
