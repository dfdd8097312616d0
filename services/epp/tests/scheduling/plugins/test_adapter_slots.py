"""Adapter residency: the LRU of each endpoint's adapter slots, replayed from what the EPP sees."""

from igw.epp.scheduling.plugins._adapter_slots import AdapterSlots
from igw.epp.testing.builders import endpoint

POD = "pod-0-rank-0"


def test_an_adapter_sent_recently_is_resident_until_newer_ones_fill_the_slots() -> None:
    slots = AdapterSlots()
    slots.observe(endpoint(POD, active=["a"], max_lora=2))  # the scrape names "a": an adapter
    slots.observe(endpoint("pod-1", active=["b", "c"], max_lora=2))
    idle = endpoint(POD, max_lora=2)  # no running adapter now: "a" stays loaded, unreported
    assert slots.residency(idle, "a") == "resident"
    assert slots.residency(idle, "b") == "load"
    slots.sent(POD, "b")
    slots.sent(POD, "c")  # two newer adapters: "a" was evicted (LRU)
    assert slots.residency(idle, "a") == "load"
    assert slots.residency(idle, "c") == "resident"


def test_a_load_waits_when_every_slot_runs_requests() -> None:
    slots = AdapterSlots()
    busy = endpoint(POD, active=["a", "b"], max_lora=2)
    slots.observe(busy)
    slots.observe(endpoint("pod-1", active=["c"], max_lora=2))
    assert slots.residency(busy, "c") == "blocked"
    assert slots.residency(endpoint(POD, active=["a"], max_lora=2), "c") == "load"


def test_base_models_and_servers_without_adapters_are_not_charged() -> None:
    slots = AdapterSlots()
    slots.observe(endpoint(POD, active=["a"], max_lora=2))
    assert slots.residency(endpoint(POD, max_lora=2), "base-model") == "none"
    assert slots.residency(endpoint(POD), "a") == "none"  # max_lora 0: no adapters there


def test_a_load_that_would_evict_the_pools_only_copy_of_an_adapter_is_an_evict() -> None:
    """One slot each: `a` holds x, `b` holds y, `c` holds x too. Loading z on `a` or `c` evicts
    an x that the other still holds; on `b` it evicts the only y."""
    slots = AdapterSlots()
    pods = [
        endpoint("a", active=["x"], max_lora=1),
        endpoint("b", active=["y"], max_lora=1),
        endpoint("c", active=["x"], max_lora=1),
        endpoint("d", active=["z"], max_lora=1),
    ]
    for pod in pods:
        slots.observe(pod)
    idle = [endpoint(p.endpoint.name, max_lora=1) for p in pods]
    assert slots.residencies(idle, "z") == ["load", "evict", "load", "resident"]
    # A slot whose adapter still runs is not evicted: `b`'s y busy, nothing else to evict there.
    assert slots.residencies([idle[0], idle[2], pods[1]], "z") == ["load", "load", "blocked"]
    # Alone, an endpoint has no pool to compare with.
    assert slots.residency(idle[1], "z") == "load"
