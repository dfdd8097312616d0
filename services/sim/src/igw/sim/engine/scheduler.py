"""Continuous batching, as vLLM's (V1) scheduler does it, without a clock.

Each step has a budget of `max_num_batched_tokens` tokens and is planned in two passes:

1. Running sequences, oldest first, each get the tokens they need (one while decoding, the rest
   of their prompt, up to the budget, while prefilling). When the KV cache has no block for one
   of them, the youngest running sequence is preempted: its blocks are freed and it goes back to
   the head of the waiting queue, to be recomputed later (its prompt blocks usually still cached).
2. Only if nothing was preempted: waiting sequences, in FIFO order, while a seq slot
   (`max_num_seqs`) and budget remain. A sequence's cached prompt prefix costs neither blocks
   nor compute; a prefill larger than the remaining budget is chunked over several steps. A
   sequence whose LoRA adapter cannot be loaded (every slot busy) is passed over and keeps its
   place; one whose blocks do not fit stops admission (head-of-line, as in vLLM).

`schedule` returns the `Step` with its simulated cost; the engine sleeps that long, then calls
`complete`, which emits one token for every sequence whose computed tokens caught up and
finishes those that reached `max_tokens`. Everything here is O(batch) per step.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from igw.sim.engine.api import TokenEvent
from igw.sim.engine.config import EngineConfig
from igw.sim.engine.kvcache import KVCache
from igw.sim.engine.lora import AdapterPlan, LoraSlots
from igw.sim.engine.sequence import Sequence, SequenceStatus

__all__ = ["Scheduler", "Step"]


@dataclass(slots=True)
class Step:
    """One planned engine iteration."""

    sequences: list[Sequence] = field(default_factory=list)
    """Sequences computing tokens in this step (each with `step_tokens` set)."""
    admitted: list[Sequence] = field(default_factory=list)
    """Of those, the ones that left the waiting queue for this step."""
    prefill_tokens: int = 0
    decode_sequences: int = 0
    context_tokens: int = 0
    """Tokens the decoding sequences' attention reads."""
    lora_loads: int = 0
    preempted: int = 0
    seconds: float = 0.0
    """Simulated duration."""


class Scheduler:
    """The waiting queue and the running batch of one engine."""

    def __init__(self, config: EngineConfig, kv: KVCache, lora: LoraSlots) -> None:
        self._config = config
        self.kv = kv
        self.lora = lora
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.preemptions = 0
        self.prompt_tokens = 0
        """Prompt tokens of requests that produced their first token (cumulative)."""
        self.generation_tokens = 0

    def has_work(self) -> bool:
        return bool(self.running or self.waiting)

    def enqueue(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def waiting_loras(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(seq.lora for seq in self.waiting if seq.lora is not None))

    def schedule(self) -> Step:
        step = Step()
        budget = self._schedule_running(step, self._config.max_num_batched_tokens)
        if not step.preempted:
            self._admit_waiting(step, budget)
        step.seconds = (
            self._config.timing.step_seconds(
                step.prefill_tokens, step.decode_sequences, step.context_tokens
            )
            + step.lora_loads * self._config.lora_load_latency_s
        )
        return step

    def complete(self, step: Step, end: float) -> None:
        """The step ran until simulated time `end`: emit its tokens."""
        finished = False
        for seq in step.sequences:
            if seq.status is not SequenceStatus.RUNNING:
                continue  # cancelled while the step ran
            seq.computed += seq.step_tokens
            if seq.computed < seq.total:
                continue  # a prefill chunk; more to come
            index = seq.generated
            seq.generated += 1
            self.generation_tokens += 1
            if index == 0:
                seq.first_token = end
                self.prompt_tokens += seq.prompt_len
            if seq.generated < seq.request.max_tokens:
                seq.channel.put(TokenEvent(index, end))
            else:
                seq.channel.put(TokenEvent(index, end, "length"))
                self._release(seq, SequenceStatus.FINISHED)
                seq.finished = end
                finished = True
        if finished:
            self.running = [seq for seq in self.running if seq.status is SequenceStatus.RUNNING]

    def cancel(self, seq: Sequence) -> None:
        """Frees the sequence's slot and blocks now. Idempotent."""
        if seq.status is SequenceStatus.RUNNING:
            self.running.remove(seq)
            self._release(seq, SequenceStatus.CANCELLED)
        elif seq.status is SequenceStatus.WAITING:
            self.waiting.remove(seq)
            seq.status = SequenceStatus.CANCELLED
            seq.channel.close()

    def close_all(self) -> None:
        """Ends every request's token stream (engine shutdown)."""
        for seq in (*self.running, *self.waiting):
            self.cancel(seq)

    def _schedule_running(self, step: Step, budget: int) -> int:
        running = self.running
        i = 0
        while i < len(running) and budget > 0:
            seq = running[i]
            tokens = min(seq.total - seq.computed, budget)
            if not self._reserve(seq, seq.computed + tokens, step):
                break  # it was the youngest: preempted itself
            if seq.decoding:
                step.decode_sequences += 1
                step.context_tokens += seq.computed
            else:
                step.prefill_tokens += tokens
            seq.step_tokens = tokens
            step.sequences.append(seq)
            budget -= tokens
            i += 1
        return budget

    def _reserve(self, seq: Sequence, tokens: int, step: Step) -> bool:
        """Blocks for `tokens` of `seq`, preempting the youngest until they fit."""
        while not self.kv.grow(seq.table, tokens):
            victim = self.running.pop()
            self._preempt(victim)
            step.preempted += 1
            if victim is seq:
                return False
        return True

    def _preempt(self, seq: Sequence) -> None:
        self.kv.free(seq.table)
        self.lora.release(seq.lora)
        seq.status = SequenceStatus.WAITING
        seq.computed = 0
        self.waiting.appendleft(seq)
        self.preemptions += 1

    def _admit_waiting(self, step: Step, budget: int) -> None:
        waiting = self.waiting
        passed_over: list[Sequence] = []
        max_seqs = self._config.max_num_seqs
        while waiting and budget > 0 and len(self.running) < max_seqs:
            seq = waiting[0]
            plan = self.lora.plan(seq.lora)
            if plan is AdapterPlan.BLOCKED:
                passed_over.append(waiting.popleft())
                continue
            tokens = self._admit(seq, budget, step)
            if not tokens:
                break
            waiting.popleft()
            if self.lora.acquire(seq.lora):
                step.lora_loads += 1
            budget -= tokens
        waiting.extendleft(reversed(passed_over))

    def _admit(self, seq: Sequence, budget: int, step: Step) -> int:
        """Allocates the sequence's first chunk; the number of tokens it computes, 0 if the
        blocks do not fit. At least one token is always computed (vLLM recomputes the last
        prompt token of a fully cached prompt to sample from it)."""
        first = seq.cached_tokens is None
        hits = self.kv.cached_prefix(seq.table, seq.total - 1)
        hit_tokens = len(hits) * self.kv.block_size
        tokens = min(seq.total - hit_tokens, budget)
        if not self.kv.admit(seq.table, hits, hit_tokens + tokens, count=first):
            return 0
        if first:
            seq.cached_tokens = hit_tokens
        seq.status = SequenceStatus.RUNNING
        seq.computed = hit_tokens
        seq.step_tokens = tokens
        self.running.append(seq)
        step.sequences.append(seq)
        step.admitted.append(seq)
        step.prefill_tokens += tokens
        return tokens

    def _release(self, seq: Sequence, status: SequenceStatus) -> None:
        self.kv.free(seq.table)
        self.lora.release(seq.lora)
        seq.status = status
        seq.channel.close()
