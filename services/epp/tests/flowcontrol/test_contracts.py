"""Contract tests per flow-control kind (STYLE §25), over every registered policy of the kind:
the contracts `igw.epp.framework.flowcontrol` states, checked for a new policy for free."""

from __future__ import annotations

from typing import Any

import pytest

from igw.epp.config import builtin_registry
from igw.epp.flowcontrol.plugins import FcfsOrderingPolicy
from igw.epp.flowcontrol.queue import FlowQueue
from igw.epp.framework import PluginHandle, kinds
from igw.epp.framework.flowcontrol import FairnessPolicy, FlowView
from igw.epp.testing.flowcontrol import flows, queued

REGISTRY = builtin_registry(entry_points=False)


def build(type_name: str) -> Any:
    return REGISTRY.create(type_name, "under-test", {}, PluginHandle())


@pytest.mark.parametrize("type_name", REGISTRY.of_kind(kinds.FAIRNESS_POLICY))
def test_fairness_picks_none_only_when_every_flow_is_empty(type_name: str) -> None:
    policy: FairnessPolicy = build(type_name)
    state = policy.new_state()
    assert policy.pick_flow({}, state) is None
    empty: dict[str, FlowView] = {"a": FlowQueue("a", FcfsOrderingPolicy(), 0.0)}
    assert policy.pick_flow(empty, state) is None
    queues = flows({"a": 0, "b": 3, "c": 0, "d": 2})
    picked = []
    for _ in range(5):
        fairness_id = policy.pick_flow(queues, state)
        assert fairness_id is not None
        assert len(queues[fairness_id]) > 0, "a pick is always a non-empty flow"
        queues[fairness_id].pop(0.0)
        picked.append(fairness_id)
    assert sorted(picked) == ["b", "b", "b", "d", "d"], "work-conserving: every request goes"
    assert policy.pick_flow(queues, state) is None


@pytest.mark.parametrize("type_name", REGISTRY.of_kind(kinds.ORDERING_POLICY))
def test_ordering_keys_are_numeric_and_a_fifo_policy_follows_arrival(type_name: str) -> None:
    policy = build(type_name)
    earlier, later = queued(at=1.0, ttl=5.0), queued(at=2.0, ttl=5.0)
    key = policy.sort_key(earlier)
    assert isinstance(key, tuple)
    assert all(isinstance(part, float | int) for part in key)
    if not policy.needs_heap:  # a FIFO queue can hold it only if arrival order is its order
        assert policy.sort_key(earlier) <= policy.sort_key(later)


@pytest.mark.parametrize("type_name", REGISTRY.of_kind(kinds.USAGE_LIMIT_POLICY))
def test_usage_limits_give_one_positive_ceiling_per_priority(type_name: str) -> None:
    ceilings = list(build(type_name).compute_limit(0.5, [10, 0, -1]))
    assert len(ceilings) == 3
    assert all(c > 0 for c in ceilings)
