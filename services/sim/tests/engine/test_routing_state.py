"""Engine.routing_state: the true per-prompt state the benchmark lab's omniscient router reads.

It must agree with what the engine then does: the cached tokens it reports are the tokens the
next request with that prompt is served from cache, and the queue it reports is the work that
request would wait behind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from igw.sim.engine import Engine, GenerationRequest

MakeEngine = Callable[..., Awaitable[Engine]]


def prompt(tokens: int, seed: int) -> tuple[int, ...]:
    return tuple(range(seed << 20, (seed << 20) + tokens))


async def test_cached_tokens_predict_the_next_requests_cache_hits(make_engine: MakeEngine) -> None:
    engine = await make_engine()
    shared = prompt(160, 1)
    before = engine.routing_state(shared)
    assert before.cached_tokens == 0
    assert before.free_blocks == engine.config.num_gpu_blocks
    first = engine.submit(GenerationRequest("a", shared, 2))
    _ = [event async for event in first]

    follow_up = (*shared, *prompt(40, 2))
    state = engine.routing_state(follow_up)
    predicted = state.cached_tokens
    assert predicted == 160
    assert state.cached_blocks == 10  # the first prompt's blocks, freed but still registered
    again = engine.routing_state(follow_up, block_hashes=state.block_hashes)
    assert again == state
    second = engine.submit(GenerationRequest("b", follow_up, 2))
    _ = [event async for event in second]
    assert second.cached_tokens == predicted
    # Another adapter never reads the base model's blocks, and an unrelated prompt finds none.
    assert engine.routing_state(shared, "an-adapter").cached_tokens == 0
    assert engine.routing_state(prompt(160, 3)).cached_tokens == 0


async def test_queue_and_adapter_state(make_engine: MakeEngine) -> None:
    engine = await make_engine(loras=("a",), max_loras=1, time_scale=0.5)
    engine.submit(GenerationRequest("x", prompt(300, 1), 50, "a"))
    engine.submit(GenerationRequest("y", prompt(200, 2), 50))
    state = engine.routing_state(prompt(10, 3), "a")
    assert (state.running, state.waiting) == (0, 2)
    assert state.queued_prefill_tokens == 500
    # A waiting request sharing the head of one ahead of it computes only its own tail.
    engine.submit(GenerationRequest("z", (*prompt(200, 2), *prompt(40, 5)), 50))
    assert engine.routing_state(prompt(10, 3)).queued_prefill_tokens == 500 + 240 - 192
    assert state.decoding == 0
    assert state.adapter_ready  # resident from the start
    assert not state.adapter_blocked
    assert state.cached_blocks == 0
    # A prompt sharing the head of a waiting request's finds it cached once it runs.
    behind = engine.routing_state((*prompt(200, 2), *prompt(20, 4)))
    assert (behind.cached_tokens, behind.queued_prefix_tokens) == (0, 192)
    assert len(behind.block_hashes) == 220 // 16
    assert engine.routing_state(prompt(10, 3), "a").cached_tokens == 0


async def test_an_adapter_is_blocked_while_every_slot_runs_requests(
    make_engine: MakeEngine,
) -> None:
    engine = await make_engine(loras=("a", "b"), max_loras=1)
    handle = engine.submit(GenerationRequest("x", prompt(32, 1), 400, "a"))
    async for _event in handle:
        break  # running now, on the only slot
    assert engine.routing_state(prompt(10, 2), "b").adapter_blocked
    assert engine.routing_state(prompt(10, 2), "a").adapter_ready
    handle.cancel()
    state = engine.routing_state(prompt(10, 2), "b")
    assert not state.adapter_blocked
    assert not state.adapter_ready  # a load first
