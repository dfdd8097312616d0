"""The InferenceObjective store: pool filter, priorities, deletes, replays, malformed objects."""

from typing import Any

import pytest
import structlog

from igw.epp.requestpath import ObjectiveStore, StaticObjectives

KEY = "ns/batch"


def objective(
    priority: object = -1, *, pool: object = "pool", group: object = None, **spec: Any
) -> dict[str, Any]:
    """An InferenceObjective as the API server returns it (group None = left out)."""
    ref: dict[str, Any] = {"name": pool, "kind": "InferencePool"}
    if group is not None:
        ref["group"] = group
    body: dict[str, Any] = {"poolRef": ref, **spec}
    if priority is not None:
        body["priority"] = priority
    return {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferenceObjective",
        "metadata": {"name": "batch", "namespace": "ns"},
        "spec": body,
    }


def store_with(obj: Any, key: str = KEY) -> ObjectiveStore:
    store = ObjectiveStore("pool")
    store.reconcile(key, obj)
    return store


@pytest.mark.parametrize(
    ("obj", "priority"),
    [
        pytest.param(objective(), -1, id="our-pool-default-group"),
        pytest.param(objective(7, group="inference.networking.k8s.io"), 7, id="our-pool-group"),
        pytest.param(objective(None), 0, id="priority-unset-is-0"),
        pytest.param(objective(pool="other"), 0, id="other-pool-ignored"),
        pytest.param(objective(group="inference.networking.x-k8s.io"), 0, id="other-group"),
        # The CRD defaults only an absent group; an explicit "" names the core group.
        pytest.param(objective(group=""), 0, id="empty-group-is-not-the-default"),
        pytest.param(
            {
                **objective(),
                "metadata": {"name": "batch", "deletionTimestamp": "2025-01-01T00:00:00Z"},
            },
            0,
            id="being-deleted",
        ),
        pytest.param(objective("high"), 0, id="malformed-priority"),
        pytest.param(objective(True), 0, id="boolean-priority"),
        pytest.param({"spec": "x"}, 0, id="malformed-spec"),
        pytest.param({"spec": {"poolRef": "pool"}}, 0, id="malformed-pool-ref"),
        pytest.param({"metadata": [], "spec": {}}, 0, id="malformed-metadata"),
    ],
)
def test_priority_of_an_objective(obj: Any, priority: int) -> None:
    assert store_with(obj).priority("batch") == priority


def test_pool_kind_is_not_checked_as_upstream() -> None:
    obj = objective()
    obj["spec"]["poolRef"]["kind"] = "Service"
    assert store_with(obj).priority("batch") == -1


def test_a_custom_pool_group_matches_only_that_group() -> None:
    store = ObjectiveStore("pool", pool_group="example.com")
    store.reconcile(KEY, objective())
    store.reconcile("ns/chat", objective(5, group="example.com"))
    assert (store.priority("batch"), store.priority("chat")) == (0, 5)


def test_unknown_or_absent_objective_is_0() -> None:
    store = store_with(objective())
    assert (store.priority(None), store.priority("nope")) == (0, 0)


def test_delete_removes_the_objective() -> None:
    store = store_with(objective())
    store.reconcile(KEY, None)
    assert store.priority("batch") == 0
    store.reconcile(KEY, None)  # a replayed delete of an unknown key
    assert store.priorities == {}


def test_pool_ref_moving_away_removes_the_objective() -> None:
    store = store_with(objective())
    store.reconcile(KEY, objective(pool="other"))
    assert store.priority("batch") == 0


def test_update_changes_the_priority() -> None:
    store = store_with(objective(-1))
    store.reconcile(KEY, objective(3))
    assert store.priority("batch") == 3


def test_a_replay_changes_nothing() -> None:
    store = store_with(objective())
    published = store.priorities
    store.reconcile(KEY, objective())
    assert store.priorities is published  # no rebuild: readers keep the same snapshot


def test_a_malformed_update_is_logged_and_drops_the_key() -> None:
    store = store_with(objective())
    with structlog.testing.capture_logs() as logs:
        store.reconcile(KEY, objective("high"))
    assert store.priority("batch") == 0
    [invalid] = [e for e in logs if e["event"] == "epp.objectives.invalid"]
    assert (invalid["key"], invalid["reason"]) == (KEY, "spec.priority is not an integer")


def test_other_namespaces_are_ignored_when_the_pool_namespace_is_set() -> None:
    store = ObjectiveStore("pool", pool_namespace="ns")
    store.reconcile("other/batch", objective(-5))
    store.reconcile("ns/chat", objective(4))
    assert (store.priority("batch"), store.priority("chat")) == (0, 4)


@pytest.mark.parametrize("order", [pytest.param(1, id="a-first"), pytest.param(-1, id="b-first")])
def test_a_name_in_two_namespaces_resolves_to_the_smallest_key(order: int) -> None:
    """Only with a cluster-wide watch and no pool namespace; event order does not matter."""
    store = ObjectiveStore("pool")
    for key, priority in [("a/batch", -1), ("b/batch", 9)][::order]:
        store.reconcile(key, objective(priority))
    assert store.priority("batch") == -1
    store.reconcile("a/batch", None)
    assert store.priority("batch") == 9


def test_static_objectives() -> None:
    static = StaticObjectives({"batch": -1})
    assert (static.priority("batch"), static.priority(None), static.priority("x")) == (-1, 0, 0)
