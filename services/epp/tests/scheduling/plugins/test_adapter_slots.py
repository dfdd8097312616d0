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
