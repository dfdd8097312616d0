"""The InferenceModelRewrite store: precedence, pool filter, deletes, bad objects, the split."""

from collections import Counter
from typing import Any

import pytest
import structlog

from igw.epp.requestpath import ModelRewriteStore, RewriteChoice
from igw.epp.testing.builders import seeded

OLD = "2025-01-01T00:00:00Z"
NEW = "2025-06-01T00:00:00Z"


def rule(*models: str, to: str | None = None, **targets: int | None) -> dict[str, Any]:
    """A rule matching `models` (none: generic) with one unweighted target `to`, or `targets`
    as model -> weight (None: weight left out)."""
    listed: list[dict[str, Any]] = [{"modelRewrite": to}] if to is not None else []
    for model, weight in targets.items():
        listed.append({"modelRewrite": model} | ({} if weight is None else {"weight": weight}))
    out: dict[str, Any] = {"targets": listed}
    if models:
        out["matches"] = [{"model": {"type": "Exact", "value": m}} for m in models]
    return out


def rewrite(
    name: str,
    *rules: dict[str, Any],
    created: str | None = OLD,
    pool: str = "pool",
    **metadata: Any,
) -> tuple[str, dict[str, Any]]:
    """(key, object) of an InferenceModelRewrite in namespace `ns`, as the API returns it."""
    meta = {"name": name, "namespace": "ns", **metadata}
    if created is not None:
        meta["creationTimestamp"] = created
    obj = {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferenceModelRewrite",
        "metadata": meta,
        "spec": {"poolRef": {"group": "inference.networking.k8s.io", "name": pool},
                 "rules": list(rules)},
    }  # fmt: skip
    return f"ns/{name}", obj


def store_of(*objects: tuple[str, Any]) -> ModelRewriteStore:
    store = ModelRewriteStore("pool", rng=seeded())
    for key, obj in objects:
        store.reconcile(key, obj)
    return store


def chosen(store: ModelRewriteStore, model: str) -> tuple[str, str] | None:
    choice = store.choose(model)
    return None if choice is None else (choice.rewrite, choice.target)


@pytest.mark.parametrize(
    ("objects", "model", "expected"),
    [
        pytest.param([rewrite("a", rule("m", to="t"))], "m", ("a", "t"), id="exact"),
        pytest.param([rewrite("a", rule(to="t"))], "anything", ("a", "t"), id="generic"),
        pytest.param([rewrite("a", rule("m", to="t"))], "x", None, id="no-match"),
        pytest.param(
            [rewrite("old", rule(to="g"), created=OLD), rewrite("new", rule("m", to="e"),
                                                                created=NEW)],
            "m", ("new", "e"), id="exact-beats-older-generic",
        ),
        pytest.param(
            [rewrite("a", rule(to="g")), rewrite("b", rule("m", to="e"))],
            "x", ("a", "g"), id="generic-when-no-exact",
        ),
        pytest.param(
            [rewrite("new", rule("m", to="n"), created=NEW),
             rewrite("old", rule("m", to="o"), created=OLD)],
            "m", ("old", "o"), id="oldest-exact-wins",
        ),
        pytest.param(
            [rewrite("new", rule(to="n"), created=NEW), rewrite("old", rule(to="o"), created=OLD)],
            "m", ("old", "o"), id="oldest-generic-wins",
        ),
        pytest.param(
            [rewrite("b", rule("m", to="b")), rewrite("a", rule("m", to="a"))],
            "m", ("a", "a"), id="equal-timestamps-smaller-name-wins",
        ),
        pytest.param(
            [rewrite("a", rule("m", to="first"), rule("m", to="second"))],
            "m", ("a", "first"), id="first-rule-in-list-order",
        ),
        pytest.param(
            [rewrite("a", rule(to="first"), rule(to="second"))],
            "m", ("a", "first"), id="first-generic-rule-in-list-order",
        ),
        pytest.param(
            [rewrite("a", rule("m", "n", to="t"))], "n", ("a", "t"), id="matches-are-ored",
        ),
        pytest.param(
            [rewrite("new", rule("m", to="n"), created=NEW),
             rewrite("zero", rule("m", to="z"), created=None)],
            "m", ("zero", "z"), id="absent-timestamp-is-oldest",
        ),
        # A match without `model` names nothing, and its rule is not generic either.
        pytest.param(
            [rewrite("a", {"matches": [{}], "targets": [{"modelRewrite": "t"}]})],
            "m", None, id="match-without-model",
        ),
        # Upstream sends the model as "" for a winning rule without targets; here it stays.
        pytest.param(
            [rewrite("a", rule(to="g")), rewrite("b", rule("m"))],
            "m", None, id="winning-rule-without-targets-keeps-the-model",
        ),
    ],
)  # fmt: skip
def test_precedence(
    objects: list[tuple[str, Any]], model: str, expected: tuple[str, str] | None
) -> None:
    """Each case also in reverse event order: the answer never depends on it."""
    assert chosen(store_of(*objects), model) == expected
    assert chosen(store_of(*reversed(objects)), model) == expected


def test_an_update_of_an_equally_old_object_keeps_the_winner() -> None:
    """Upstream re-appends an updated object behind its equal-timestamp peers, so updating the
    winner would hand its models to the other; here the order is by name."""
    a, b = rewrite("a", rule("m", to="a")), rewrite("b", rule("m", to="b"))
    store = store_of(a, b)
    store.reconcile(*rewrite("a", rule("m", to="a2")))
    assert chosen(store, "m") == ("a", "a2")


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(rewrite("a", rule(to="t"), pool="other")[1], id="other-pool"),
        pytest.param(
            rewrite("a", rule(to="t"), deletionTimestamp=NEW)[1], id="being-deleted"
        ),
        pytest.param({"metadata": {"name": "a"}, "spec": {"rules": [rule(to="t")]}},
                     id="no-pool-ref"),
        pytest.param({"spec": {"poolRef": {"name": "pool", "group": "x.io"},
                               "rules": [rule(to="t")]}}, id="other-group"),
    ],
)  # fmt: skip
def test_objects_of_other_pools_are_ignored(obj: dict[str, Any]) -> None:
    assert store_of(("ns/a", obj)).choose("m") is None


def test_pool_group_defaults_when_left_out() -> None:
    obj = {"spec": {"poolRef": {"name": "pool"}, "rules": [rule(to="t")]}}
    assert chosen(store_of(("ns/a", obj)), "m") == ("a", "t")


def test_other_namespaces_are_ignored_when_the_pool_namespace_is_set() -> None:
    store = ModelRewriteStore("pool", pool_namespace="ns")
    store.reconcile("other/a", rewrite("a", rule(to="t"))[1])
    assert store.choose("m") is None


@pytest.mark.parametrize(
    "gone",
    [pytest.param(None, id="deleted"),
     pytest.param(rewrite("old", rule("m", to="o"), pool="other")[1], id="moved-to-another-pool")],
)  # fmt: skip
def test_removing_the_winner_hands_over_to_the_next(gone: Any) -> None:
    old = rewrite("old", rule("m", to="o"), created=OLD)
    store = store_of(old, rewrite("new", rule("m", to="n"), created=NEW))
    store.reconcile(old[0], gone)
    assert chosen(store, "m") == ("new", "n")
    store.reconcile("ns/new", None)
    assert store.choose("m") is None
    store.reconcile("ns/new", None)  # a replayed delete


@pytest.mark.parametrize(
    ("spec_rules", "reason"),
    [
        pytest.param("all", "spec.rules is not a list", id="rules-not-a-list"),
        pytest.param(["x"], "spec.rules[0] is not a map", id="rule-not-a-map"),
        pytest.param([{"matches": "m"}], "spec.rules[0].matches is not a list",
                     id="matches-not-a-list"),
        pytest.param([{"matches": [{"model": {"type": "Exact"}}]}],
                     "spec.rules[0].matches has a model without a string value", id="no-value"),
        pytest.param([{"targets": [{"weight": 1}]}],
                     "spec.rules[0].targets has an entry without a string modelRewrite",
                     id="target-without-model"),
        pytest.param([rule(t=-1)],
                     "spec.rules[0].targets has a weight that is not a non-negative integer",
                     id="negative-weight"),
        pytest.param([rule(to="t"), {"targets": [{"modelRewrite": "u", "weight": "9"}]}],
                     "spec.rules[1].targets has a weight that is not a non-negative integer",
                     id="string-weight"),
    ],
)  # fmt: skip
def test_a_malformed_object_is_logged_and_contributes_nothing(spec_rules: Any, reason: str) -> None:
    key, good = rewrite("a", rule(to="t"))
    store = store_of((key, good))
    bad = {**good, "spec": {**good["spec"], "rules": spec_rules}}
    with structlog.testing.capture_logs() as logs:
        store.reconcile(key, bad)
    assert store.choose("m") is None  # the valid version it replaced is gone too
    [invalid] = [e for e in logs if e["event"] == "epp.rewrites.invalid"]
    assert (invalid["key"], invalid["reason"]) == (key, reason)


def test_a_malformed_timestamp_is_refused() -> None:
    store = store_of(rewrite("a", rule(to="t"), created="yesterday"))
    assert store.choose("m") is None


def picks(store: ModelRewriteStore, n: int = 10_000) -> Counter[str]:
    choices = [store.choose("m") for _ in range(n)]
    return Counter(c.target for c in choices if isinstance(c, RewriteChoice))


def test_a_90_10_split_is_kept_over_many_requests() -> None:
    store = store_of(rewrite("canary", rule("m", stable=90, canary=10)))
    counts = picks(store)
    assert sum(counts.values()) == 10_000
    assert 0.88 <= counts["stable"] / 10_000 <= 0.92
    assert 0.08 <= counts["canary"] / 10_000 <= 0.12


def test_weights_left_out_split_evenly() -> None:
    store = store_of(rewrite("even", rule("m", a=None, b=None, c=None)))
    counts = picks(store, 9_000)
    assert all(2_800 <= counts[t] <= 3_200 for t in "abc"), counts


def test_a_target_without_weight_among_weighted_ones_is_never_picked() -> None:
    """An absent weight counts 0 (upstream's Go zero value), so only the weighted target runs."""
    store = store_of(rewrite("mixed", rule("m", a=None, b=5)))
    assert picks(store, 1_000) == {"b": 1_000}


def test_the_split_follows_the_rng_given() -> None:
    key, obj = rewrite("s", rule("m", a=1, b=1))

    def run(seed: int) -> list[RewriteChoice | None]:
        store = ModelRewriteStore("pool", rng=seeded(seed))
        store.reconcile(key, obj)
        return [store.choose("m") for _ in range(50)]

    assert run(0) == run(0) != run(1)
