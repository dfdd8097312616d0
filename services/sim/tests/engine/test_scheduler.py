"""igw.sim.engine.scheduler, stepped by hand: budgets, chunking, preemption, admission order."""

from __future__ import annotations

import pytest

from igw.sim.engine.api import GenerationRequest
from igw.sim.engine.config import EngineConfig
from igw.sim.engine.kvcache import BlockTable, KVCache
from igw.sim.engine.lora import LoraSlots
from igw.sim.engine.scheduler import Scheduler, Step
from igw.sim.engine.sequence import Sequence, SequenceStatus


class Sim:
    """A scheduler on the tiny preset and a simulated clock."""

    def __init__(self, loras: tuple[str, ...] = (), **overrides: object) -> None:
        self.config = EngineConfig.from_preset("tiny", **overrides)
        lora = LoraSlots(self.config.max_loras)
        for name in loras:
            lora.register(name)
        kv = KVCache(self.config.num_gpu_blocks, self.config.block_size)
        self.scheduler = Scheduler(self.config, kv, lora)
        self.clock = 0.0
        self._seeds = 0

    def submit(self, tokens: int, max_tokens: int, lora: str | None = None) -> Sequence:
        self._seeds += 1
        start = self._seeds << 20
        request = GenerationRequest(
            f"r{self._seeds}", tuple(range(start, start + tokens)), max_tokens, lora
        )
        hashes = self.scheduler.kv.prompt_hashes(request.prompt_tokens, lora)
        seq = Sequence(request, BlockTable(hashes, tokens), arrival=self.clock)
        self.scheduler.enqueue(seq)
        return seq

    def step(self) -> Step:
        step = self.scheduler.schedule()
        self.clock += step.seconds
        self.scheduler.complete(step, self.clock)
        return step

    def drain(self) -> None:
        while self.scheduler.has_work():
            self.step()


def test_a_prefill_over_the_budget_is_chunked() -> None:
    sim = Sim()  # budget 2048 tokens per step
    seq = sim.submit(3000, max_tokens=2)
    first = sim.step()
    assert (first.prefill_tokens, seq.generated) == (2048, 0)
    second = sim.step()
    assert (second.prefill_tokens, seq.generated) == (952, 1)
    timing = sim.config.timing
    assert seq.first_token == pytest.approx(
        timing.prefill_seconds(2048) + timing.prefill_seconds(952)
    )


def test_a_prefill_joining_a_decoding_batch_slows_its_step() -> None:
    sim = Sim()
    a = sim.submit(100, max_tokens=50)
    sim.step()
    alone = sim.step()
    sim.submit(2000, max_tokens=5)
    mixed = sim.step()
    assert (alone.decode_sequences, alone.prefill_tokens) == (1, 0)
    assert (mixed.decode_sequences, mixed.prefill_tokens) == (1, 2000)
    assert mixed.seconds == pytest.approx(
        sim.config.timing.step_seconds(2000, 1, mixed.context_tokens)
    )
    assert mixed.seconds > 30 * alone.seconds  # a's next token waits for the whole prefill
    assert a.generated == 3


def test_running_requests_are_capped_at_max_num_seqs() -> None:
    sim = Sim(max_num_seqs=2)
    for _ in range(5):
        sim.submit(50, max_tokens=3)
    sim.step()
    assert (len(sim.scheduler.running), len(sim.scheduler.waiting)) == (2, 3)


def test_block_pressure_preempts_the_youngest_to_the_head_of_the_queue() -> None:
    sim = Sim(num_gpu_blocks=8, max_num_seqs=2)  # 128 tokens of KV
    older, younger = sim.submit(32, max_tokens=90), sim.submit(32, max_tokens=90)
    behind = sim.submit(16, max_tokens=1)  # no seq slot: waits from the start
    preempted_at = None
    while preempted_at is None:
        if sim.step().preempted:
            preempted_at = sim.clock
    assert sim.scheduler.running == [older]
    assert list(sim.scheduler.waiting) == [younger, behind]
    assert (younger.status, younger.computed) == (SequenceStatus.WAITING, 0)
    sim.drain()
    assert (older.generated, younger.generated, behind.generated) == (90, 90, 1)
    assert sim.scheduler.preemptions >= 1
    assert sim.scheduler.generation_tokens == 181  # nothing emitted twice
    # Counted once: the recomputation after the preemption is not a new prefix-cache query.
    assert sim.scheduler.kv.queries == 32 + 32 + 16


def test_a_request_whose_adapter_has_no_slot_is_passed_over() -> None:
    sim = Sim(loras=("x", "y"), max_loras=1)
    busy = sim.submit(16, max_tokens=20, lora="x")
    sim.step()
    blocked, base = sim.submit(16, max_tokens=2, lora="y"), sim.submit(16, max_tokens=2)
    sim.step()
    assert list(sim.scheduler.waiting) == [blocked]
    assert base.status is SequenceStatus.RUNNING
    assert sim.scheduler.waiting_loras() == ("y",)
    while busy.status is SequenceStatus.RUNNING:
        sim.step()
    loading = sim.step()
    assert loading.lora_loads == 1
    assert loading.seconds >= sim.config.lora_load_latency_s
    assert blocked.status is SequenceStatus.RUNNING


def test_a_request_whose_blocks_do_not_fit_holds_the_queue() -> None:
    sim = Sim(num_gpu_blocks=16)
    sim.submit(200, max_tokens=50)  # 13 of 16 blocks
    sim.step()
    head, small = sim.submit(100, max_tokens=2), sim.submit(10, max_tokens=2)
    sim.step()
    # vLLM admits in FIFO order: the small request fits but waits behind the head.
    assert list(sim.scheduler.waiting) == [head, small]
