"""The fairness policies: which flow of a band dispatches next (global strict, round robin,
weighted fair) and the weighted policy's parameters."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from igw.epp.config import builtin_registry
from igw.epp.flowcontrol.plugins import (
    EdfOrderingPolicy,
    GlobalStrictFairnessPolicy,
    RoundRobinFairnessPolicy,
    WeightedFairFairnessPolicy,
)
from igw.epp.flowcontrol.queue import FlowQueue
from igw.epp.framework import PluginHandle
from igw.epp.framework.flowcontrol import FairnessPolicy
from igw.epp.testing.flowcontrol import flows, queued


def picks(policy: FairnessPolicy, queues: dict[str, FlowQueue], n: int) -> list[str | None]:
    """`n` picks, each dispatching the picked flow's head, as the controller does."""
    state = policy.new_state()
    out: list[str | None] = []
    for _ in range(n):
        picked = policy.pick_flow(queues, state)
        out.append(picked)
        if picked is not None:
            queues[picked].pop(0.0)
    return out


def test_global_strict_takes_the_best_head_across_flows() -> None:
    queues = {k: FlowQueue(k, EdfOrderingPolicy(), 0.0) for k in ("a", "b")}
    queues["a"].push(queued("a", at=0.0, ttl=10.0))  # deadline 10
    queues["b"].push(queued("b", at=1.0, ttl=2.0))  # deadline 3
    queues["a"].push(queued("a", at=2.0, ttl=0.5))  # deadline 2.5: a's head
    assert picks(GlobalStrictFairnessPolicy(), queues, 4) == ["a", "b", "a", None]


def test_round_robin_alternates_and_skips_empty_flows() -> None:
    queues = flows({"b": 1, "a": 3, "c": 0})
    assert picks(RoundRobinFairnessPolicy(), queues, 5) == ["a", "b", "a", "a", None]


def test_round_robin_resumes_after_a_collected_flow() -> None:
    policy, queues = RoundRobinFairnessPolicy(), flows({"a": 2, "b": 1, "c": 2})
    state = policy.new_state()
    assert policy.pick_flow(queues, state) == "a"
    queues["a"].pop(0.0)
    assert policy.pick_flow(queues, state) == "b"
    queues["b"].pop(0.0)
    del queues["b"]  # garbage-collected while idle
    assert policy.pick_flow(queues, state) == "c"


@pytest.mark.parametrize(
    ("weights", "default", "expected"),
    [
        pytest.param({"a": 3}, 1.0, "aaab" * 3, id="3-to-1"),
        pytest.param({}, 1.0, "ab" * 6, id="equal"),
        # A flow whose weight is under one request waits a round to earn it.
        pytest.param({"a": 0.5}, 1.0, "bab" * 4, id="fractional"),
        pytest.param({"b": 2}, 0.5, "bb" + "abbbb" * 2, id="default-weight"),
    ],
)
def test_weighted_fair_gives_each_backlogged_flow_its_share(
    weights: dict[str, float], default: float, expected: str
) -> None:
    policy = WeightedFairFairnessPolicy(weights=weights, default_weight=default)
    got = picks(policy, flows({"a": 50, "b": 50}), len(expected))
    assert "".join(p or "-" for p in got) == expected


def test_weighted_fair_by_bytes_shares_bytes() -> None:
    queues = flows({"a": 40}, size=1000) | flows({"b": 40}, size=4000)
    policy = WeightedFairFairnessPolicy(unit="bytes", quantum_bytes=1000)
    got = picks(policy, queues, 50)
    sent = {k: got.count(k) * size for k, size in (("a", 1000), ("b", 4000))}
    assert abs(sent["a"] - sent["b"]) <= 4000


def test_weighted_fair_keeps_no_credit_for_an_idle_flow() -> None:
    policy = WeightedFairFairnessPolicy(weights={"a": 4})
    queues = flows({"a": 1, "b": 10})
    assert picks(policy, queues, 4) == ["a", "b", "b", "b"]


def test_weighted_fair_parameters_are_validated() -> None:
    registry = builtin_registry(entry_points=False)

    def create(params: dict[str, Any]) -> object:
        return registry.create("weighted-fair-fairness-policy", "wf", params, PluginHandle())

    policy = create({"weights": {"t": 2}, "defaultWeight": 0.5, "unit": "bytes"})
    assert isinstance(policy, WeightedFairFairnessPolicy)
    assert (policy.weight("t"), policy.weight("other"), policy.by_bytes) == (2, 0.5, True)
    with pytest.raises(ValueError, match="weight of 't' must be a positive number"):
        create({"weights": {"t": 0}})
    with pytest.raises(msgspec.ValidationError, match="unit"):
        create({"unit": "tokens"})
    with pytest.raises(msgspec.ValidationError, match="weights"):
        create({"weights": {"t": "lots"}})
