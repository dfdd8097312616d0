"""igw.sim.engine.lora: resident slots, least-recently-used eviction of idle adapters."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from igw.sim.engine.api import AdapterError
from igw.sim.engine.lora import AdapterPlan, LoraSlots


def slots(max_loras: int, *names: str) -> LoraSlots:
    lora = LoraSlots(max_loras)
    for name in names:
        lora.register(name)
    return lora


def test_base_model_needs_no_slot() -> None:
    lora = slots(1)
    assert lora.plan(None) is AdapterPlan.READY
    assert lora.acquire(None) is False
    lora.release(None)
    assert lora.resident() == ()


def test_first_use_loads_then_resident() -> None:
    lora = slots(2, "a")
    assert lora.plan("a") is AdapterPlan.LOAD
    assert lora.acquire("a") is True
    assert lora.plan("a") is AdapterPlan.READY
    assert lora.acquire("a") is False
    assert lora.running() == ("a",)


def test_least_recently_used_idle_adapter_is_evicted() -> None:
    lora = slots(2, "a", "b", "c")
    for name in ("a", "b", "a"):
        lora.acquire(name)
        lora.release(name)
    assert lora.plan("c") is AdapterPlan.LOAD
    lora.acquire("c")
    assert lora.resident() == ("a", "c")  # b was used least recently


def test_adapters_with_running_requests_are_never_evicted() -> None:
    lora = slots(2, "a", "b", "c")
    lora.acquire("a")
    lora.acquire("b")
    assert lora.plan("c") is AdapterPlan.BLOCKED
    lora.release("b")
    assert lora.plan("c") is AdapterPlan.LOAD
    lora.acquire("c")
    assert lora.resident() == ("a", "c")


def test_make_resident_only_takes_free_slots() -> None:
    lora = slots(1, "a", "b")
    assert lora.make_resident("a")
    assert not lora.make_resident("b")
    assert lora.resident() == ("a",)


def test_unregistered_adapter_leaves_when_its_last_request_ends() -> None:
    lora = slots(1, "a")
    lora.acquire("a")
    lora.unregister("a")
    assert lora.resident() == ("a",)
    lora.release("a")
    assert (lora.resident(), lora.known()) == ((), ())


@pytest.mark.parametrize(
    ("action", "message"),
    [
        pytest.param(lambda lora: lora.register("a"), "already been loaded", id="register-twice"),
        pytest.param(
            lambda lora: lora.unregister("zz"), "cannot be found", id="unregister-unknown"
        ),
    ],
)
def test_adapter_errors(action: Callable[[LoraSlots], None], message: str) -> None:
    lora = slots(1, "a")
    with pytest.raises(AdapterError, match=message):
        action(lora)
