"""igw.sim.engine.Engine: the behaviours a router depends on, measured on a running engine.

Every engine here runs the `tiny` preset, whose step costs in simulated milliseconds are
    prefill P(n) = 10 + 0.1 n          decode D(b, ctx) = 5 + 0.5 b + 0.002 ctx
and 20x faster than real time unless a test says otherwise. Times asserted are simulated.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
from collections.abc import Awaitable, Callable

import pytest

from igw.sim import tokenizer
from igw.sim.engine import (
    AdapterError,
    Engine,
    EngineConfig,
    EngineFullError,
    GenerationRequest,
    RequestHandle,
    SimEngine,
    TokenEvent,
)

MakeEngine = Callable[..., Awaitable[Engine]]
MS = 0.001
# Arrival and wake-up times come from the wall clock: a 0.1 ms hiccup of the test process is
# 2 ms of simulated time at 20x. Durations between steps are exact; tests that depend on an
# arrival allow this much.
TOLERANCE = 5 * MS
EXACT = 1e-9


def prompt(tokens: int, seed: int) -> tuple[int, ...]:
    return tuple(range(seed << 20, (seed << 20) + tokens))


def submit(
    engine: Engine, tokens: tuple[int, ...], max_tokens: int, lora: str | None = None
) -> RequestHandle:
    return engine.submit(GenerationRequest(f"req-{id(tokens)}", tokens, max_tokens, lora))


async def drain(handle: RequestHandle) -> list[TokenEvent]:
    return [event async for event in handle]


async def complete(handles: list[RequestHandle]) -> list[list[TokenEvent]]:
    return list(await asyncio.gather(*(drain(handle) for handle in handles)))


def ttft(handle: RequestHandle) -> float:
    timings = handle.timings
    assert timings.first_token is not None
    return timings.first_token - timings.arrival


def prefill(handle: RequestHandle) -> float:
    """From leaving the queue to the first token: the admitting step's simulated cost."""
    timings = handle.timings
    assert timings.first_token is not None
    assert timings.scheduled is not None
    return timings.first_token - timings.scheduled


def itl(events: list[TokenEvent]) -> float:
    return (events[-1].time - events[0].time) / (len(events) - 1)


async def test_streams_every_token_in_order_and_finishes_with_length(
    make_engine: MakeEngine,
) -> None:
    engine = await make_engine()
    handle = submit(engine, prompt(100, 1), max_tokens=5)
    events = await drain(handle)
    assert [e.index for e in events] == [0, 1, 2, 3, 4]
    assert [e.finish_reason for e in events] == [None, None, None, None, "length"]
    assert events == sorted(events, key=lambda e: e.time)
    snapshot = engine.snapshot()
    assert (snapshot.prompt_tokens, snapshot.generation_tokens) == (100, 5)
    assert (snapshot.running, snapshot.waiting, snapshot.kv_cache_usage) == (0, 0, 0.0)


async def test_ttft_grows_with_queue_length(make_engine: MakeEngine) -> None:
    engine = await make_engine(max_num_seqs=1)
    handles = [submit(engine, prompt(200, seed), max_tokens=10) for seed in range(5)]
    await complete(handles)
    ttfts = [ttft(h) for h in handles]
    assert ttfts == sorted(ttfts)
    assert ttfts[0] == pytest.approx(0.030, abs=TOLERANCE)
    # Each request waits for the whole service of the ones ahead: P(200) + 9 decode steps.
    service = 0.030 + 9 * (0.0055 + 0.002 * 0.204)
    first_token = handles[0].timings.first_token or 0.0
    for position, handle in enumerate(handles):
        delay = (handle.timings.first_token or 0.0) - first_token
        assert delay == pytest.approx(position * service, abs=EXACT)


@pytest.mark.parametrize(
    ("second", "lora", "cached"),
    [
        pytest.param(prompt(800, 1) + prompt(200, 2), None, 800, id="shares-800-tokens"),
        # The last prompt token is always computed: 62 of the 63 blocks hit.
        pytest.param(prompt(1000, 1), None, 992, id="same-prompt"),
        pytest.param(prompt(1000, 3), None, 0, id="unrelated"),
        pytest.param(prompt(1000, 1), "adapter", 0, id="same-prompt-other-adapter"),
    ],
)
async def test_a_shared_prefix_is_cached_and_lowers_ttft(
    make_engine: MakeEngine, second: tuple[int, ...], lora: str | None, cached: int
) -> None:
    engine = await make_engine(loras=["adapter"])
    first = submit(engine, prompt(1000, 1), max_tokens=4)
    await drain(first)
    handle = submit(engine, second, max_tokens=4, lora=lora)
    await drain(handle)
    assert (first.cached_tokens, handle.cached_tokens) == (0, cached)
    assert prefill(first) == pytest.approx(0.010 + 0.1 * MS * 1000, abs=EXACT)
    assert prefill(handle) == pytest.approx(0.010 + 0.1 * MS * (1000 - cached), abs=EXACT)
    if cached:
        assert ttft(handle) < ttft(first) - 0.1 * MS * cached + TOLERANCE
    snapshot = engine.snapshot()
    assert (snapshot.prefix_cache_queries, snapshot.prefix_cache_hits) == (2000, cached)


async def test_chats_sharing_a_system_prompt_share_its_kv(make_engine: MakeEngine) -> None:
    engine = await make_engine()
    system = {"role": "system", "content": "You answer questions about routing. " * 110}
    first = tokenizer.encode_chat([system, {"role": "user", "content": "What is a KV cache?"}])
    second = tokenizer.encode_chat([system, {"role": "user", "content": "Why route by prefix?"}])
    a = submit(engine, first, max_tokens=2)
    await drain(a)
    b = submit(engine, second, max_tokens=2)
    await drain(b)
    system_tokens = tokenizer.count_chat([system], add_generation_prompt=False)
    assert system_tokens - 16 <= b.cached_tokens <= system_tokens
    assert ttft(b) < ttft(a) - 0.080


@pytest.mark.parametrize(
    ("requests", "prompt_tokens"),
    [
        pytest.param(1, 96, id="one-short"),
        pytest.param(8, 96, id="eight-short"),
        pytest.param(8, 800, id="eight-long"),
    ],
)
async def test_kv_usage_rises_with_concurrency_and_prompt_length_then_falls(
    make_engine: MakeEngine, requests: int, prompt_tokens: int
) -> None:
    engine = await make_engine()  # 512 blocks of 16
    handles = [submit(engine, prompt(prompt_tokens, s), max_tokens=32) for s in range(requests)]
    peak = 0.0

    async def watch(handle: RequestHandle) -> None:
        nonlocal peak
        async for _ in handle:
            peak = max(peak, engine.snapshot().kv_cache_usage)

    await asyncio.gather(*(watch(h) for h in handles))
    # At its last step a request holds ceil((prompt + 31) / 16) blocks; the watchers see the
    # state after each step, at most one block per request short of that.
    full = requests * -(-(prompt_tokens + 31) // 16) / 512
    assert full - requests / 512 <= peak <= full
    assert engine.snapshot().kv_cache_usage == 0.0


async def test_least_recently_freed_prefixes_are_evicted_first(make_engine: MakeEngine) -> None:
    engine = await make_engine(num_gpu_blocks=64)
    a, b, c = prompt(384, 1), prompt(384, 2), prompt(512, 3)  # 24, 24 and 32 blocks
    for tokens in (a, b, c):  # c needs 16 blocks beyond the free ones: a's tail goes
        await drain(submit(engine, tokens, max_tokens=1))
    probe_b = submit(engine, b, max_tokens=1)
    await drain(probe_b)  # its one new block evicts the oldest cached one: a's 8th
    probe_a = submit(engine, a, max_tokens=1)
    await drain(probe_a)
    assert (probe_b.cached_tokens, probe_a.cached_tokens) == (368, 112)


async def test_a_non_resident_adapter_pays_the_load_latency(make_engine: MakeEngine) -> None:
    engine = await make_engine(loras=["a", "b"], max_loras=1, lora_load_latency_s=0.15)
    assert engine.snapshot().loaded_loras == ("a",)
    for seed, (lora, pays) in enumerate(
        [("a", False), ("b", True), ("b", False), ("a", True), (None, False)]
    ):
        handle = submit(engine, prompt(100, seed), max_tokens=2, lora=lora)
        await drain(handle)
        expected = 0.020 + (0.15 if pays else 0.0)
        assert prefill(handle) == pytest.approx(expected, abs=EXACT), (lora, pays)
        assert ttft(handle) == pytest.approx(expected, abs=TOLERANCE), (lora, pays)
    assert engine.snapshot().loaded_loras == ("a",)


async def test_a_request_waits_while_every_adapter_slot_is_busy(make_engine: MakeEngine) -> None:
    engine = await make_engine(loras=["a", "b"], max_loras=1)
    busy = submit(engine, prompt(16, 1), max_tokens=40, lora="a")
    await anext(aiter(busy))
    blocked = submit(engine, prompt(16, 2), max_tokens=2, lora="b")
    base = submit(engine, prompt(16, 3), max_tokens=2)
    await drain(base)  # the base model request passes the blocked one
    snapshot = engine.snapshot()
    assert (snapshot.running_loras, snapshot.waiting_loras) == (("a",), ("b",))
    assert snapshot.waiting == 1
    await complete([busy, blocked])
    assert engine.snapshot().loaded_loras == ("b",)


async def test_a_pod_at_max_num_seqs_queues(make_engine: MakeEngine) -> None:
    engine = await make_engine(max_num_seqs=2)
    handles = [submit(engine, prompt(50, seed), max_tokens=20) for seed in range(5)]
    assert engine.snapshot().waiting == 5
    await anext(aiter(handles[0]))
    snapshot = engine.snapshot()
    assert (snapshot.running, snapshot.waiting) == (2, 3)
    await complete(handles)
    first_tokens = [h.timings.first_token or 0.0 for h in handles]
    finished = [h.timings.finished or 0.0 for h in handles]
    assert min(first_tokens[2:]) >= min(finished[:2])  # the third starts when a slot frees


async def test_the_waiting_queue_limit_raises_engine_full(make_engine: MakeEngine) -> None:
    engine = await make_engine(max_num_seqs=2, max_waiting_queue_length=3)
    # Two take the free seq slots at the next step; three more fit in the queue.
    handles = [submit(engine, prompt(50, seed), max_tokens=20) for seed in range(5)]
    with pytest.raises(EngineFullError):
        submit(engine, prompt(50, 9), max_tokens=20)
    await anext(aiter(handles[0]))
    assert engine.snapshot().waiting == 3
    with pytest.raises(EngineFullError):
        submit(engine, prompt(50, 9), max_tokens=20)
    await complete(handles)
    await drain(submit(engine, prompt(50, 9), max_tokens=2))


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        pytest.param(GenerationRequest("r", (), 4), ValueError, "empty", id="empty-prompt"),
        pytest.param(GenerationRequest("r", (1,), 0), ValueError, "max_tokens", id="no-tokens"),
        pytest.param(
            GenerationRequest("r", (1,) * 4000, 100),
            ValueError,
            "maximum context length is 4096 tokens. However, you requested 4100",
            id="too-long",
        ),
        pytest.param(
            GenerationRequest("r", (1,), 4, lora="nope"), AdapterError, "nope", id="unknown-lora"
        ),
    ],
)
async def test_invalid_requests_are_refused(
    make_engine: MakeEngine, request_: GenerationRequest, error: type[Exception], message: str
) -> None:
    engine = await make_engine()
    with pytest.raises(error, match=message):
        engine.submit(request_)
    assert engine.snapshot().waiting == 0


async def test_decode_slows_as_the_batch_grows(make_engine: MakeEngine) -> None:
    measured = []
    for batch, prompt_tokens in [(1, 100), (4, 100), (16, 100), (4, 1000)]:
        # A budget for every prompt in one step: no prefill chunk shares a decode step.
        engine = await make_engine(max_num_batched_tokens=8192)
        handles = [submit(engine, prompt(prompt_tokens, s), max_tokens=20) for s in range(batch)]
        events = await complete(handles)
        # Contexts grow from prompt + 1 to prompt + 19 tokens over the 19 decode steps.
        expected = 0.005 + 0.0005 * batch + 0.002 * MS * batch * (prompt_tokens + 10)
        assert itl(events[0]) == pytest.approx(expected, rel=0.01)
        measured.append(itl(events[0]))
    assert measured[0] < measured[1] < measured[2]
    assert measured[3] > measured[1]  # same batch, longer contexts


async def test_block_pressure_preempts_and_recomputes_without_losing_tokens(
    make_engine: MakeEngine,
) -> None:
    engine = await make_engine(num_gpu_blocks=8)  # 128 tokens: room for one long answer
    handles = [submit(engine, prompt(32, seed), max_tokens=90) for seed in range(3)]
    results = await complete(handles)
    for events in results:
        assert [e.index for e in events] == list(range(90))
    assert engine.snapshot().preemptions >= 1
    # A preempted request stalls: its longest gap dwarfs its typical inter-token time.
    gaps = [b.time - a.time for events in results for a, b in itertools.pairwise(events)]
    assert max(gaps) > 10 * statistics.median(gaps)


async def test_cancel_frees_blocks_and_slot_at_once(make_engine: MakeEngine) -> None:
    engine = await make_engine(max_num_seqs=1)
    long = submit(engine, prompt(1000, 1), max_tokens=1000 + 1)
    queued = submit(engine, prompt(100, 2), max_tokens=3)
    await anext(aiter(long))
    assert engine.snapshot().kv_cache_usage > 0.1
    long.cancel()
    long.cancel()  # idempotent
    snapshot = engine.snapshot()
    assert (snapshot.running, snapshot.kv_cache_usage) == (0, 0.0)
    assert await drain(long) == []  # the stream ends, without a finish reason
    assert len(await drain(queued)) == 3
    abandoned = submit(engine, prompt(100, 3), max_tokens=3)
    abandoned.cancel()
    assert engine.snapshot().waiting == 0


async def test_stop_ends_open_streams(make_engine: MakeEngine) -> None:
    engine = await make_engine()
    handle = submit(engine, prompt(100, 1), max_tokens=1000)
    await anext(aiter(handle))
    await engine.stop()
    assert await drain(handle) == []


async def test_load_lora_into_a_free_slot_takes_the_load_latency(make_engine: MakeEngine) -> None:
    engine = await make_engine(loras=["a"], max_loras=2, lora_load_latency_s=0.2)
    started = engine.now()
    await engine.load_lora("b")
    # A plain timer: it may overshoot by the loop's millisecond resolution, 20x in sim time.
    assert 0.2 - TOLERANCE <= engine.now() - started < 0.3
    assert engine.known_loras() == ("a", "b")
    assert engine.snapshot().loaded_loras == ("a", "b")
    handle = submit(engine, prompt(100, 1), max_tokens=2, lora="b")
    await drain(handle)
    assert prefill(handle) == pytest.approx(0.020, abs=EXACT)  # already resident


async def test_load_lora_without_a_free_slot_only_registers(make_engine: MakeEngine) -> None:
    engine = await make_engine(loras=["a"], max_loras=1)
    await engine.load_lora("b")
    assert (engine.known_loras(), engine.snapshot().loaded_loras) == (("a", "b"), ("a",))


async def test_loading_a_known_adapter_is_an_error(make_engine: MakeEngine) -> None:
    engine = await make_engine(loras=["a"])
    with pytest.raises(AdapterError, match="already been loaded"):
        await engine.load_lora("a")


async def test_unloading_an_unknown_adapter_is_an_error(make_engine: MakeEngine) -> None:
    engine = await make_engine(loras=["a"])
    with pytest.raises(AdapterError, match="cannot be found"):
        await engine.unload_lora("zz")


async def test_an_unloaded_adapter_refuses_new_requests(make_engine: MakeEngine) -> None:
    engine = await make_engine(loras=["a"])
    await engine.unload_lora("a")
    with pytest.raises(AdapterError):
        submit(engine, prompt(10, 1), max_tokens=1, lora="a")
    assert engine.snapshot().loaded_loras == ()


async def test_a_stopped_engine_refuses_requests(make_engine: MakeEngine) -> None:
    engine = await make_engine()
    await engine.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        submit(engine, prompt(10, 1), max_tokens=1)


def test_engine_implements_the_contract() -> None:
    engine: SimEngine = Engine(EngineConfig.from_preset("tiny"))  # checked by mypy
    assert engine.snapshot().model_name == "igw-sim/tiny"
