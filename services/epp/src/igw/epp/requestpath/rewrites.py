"""InferenceModelRewrite rules: which model a request's body model is sent as (§8.3).

`ModelRewriteStore` holds the pool's `InferenceModelRewrite` objects (`inference.networking.
x-k8s.io/v1alpha2`), fed by a Kubernetes reconciler, and answers `choose(model)`: the rule that
applies to an incoming body model and one of its targets, or None when no rule applies. The
Director depends only on the `ModelRewrites` protocol.

Upstream behaviour matched (GIE v1.5.0):

* Precedence (`pkg/epp/datastore/modelrewritestore.go`, the spec's comment in
  `apix/v1alpha2/inferencemodelrewrite_types.go`): a rule naming the model in `matches[].model.
  value` beats a generic rule (empty or absent `matches`); among several, the oldest object by
  `metadata.creationTimestamp` wins, then the first rule in list order. A match without `model`
  matches nothing, and `model.type` is not consulted (`Exact` is the only value).
* Equal timestamps (they have one-second resolution): upstream keeps the order in which the
  objects were last set, so the winner depends on event order and changes when the older one is
  updated. Here the smaller name wins (then namespace), so a relist always gives the same answer.
* Pool filter (`pkg/epp/controller/inferencemodelrewrite_reconciler.go`): as for objectives
  (`OwnPool`); an object without `poolRef` is not ours. Objects are named by their name alone.
* Target (`pkg/epp/requestcontrol/director.go`, `selectWeightedModel`): weighted random over
  `targets[].weight`, an absent weight counting 0; when every weight is 0 (or absent), uniform.
* Upstream bug, fixed on purpose: a rule without targets (`targets` is optional in the CRD; its
  `minItems: 1` only binds a present list) makes upstream send the model as `""`. Here such a rule
  still wins its precedence but leaves the model as it was, and no decision is counted.

An object the CRD's schema refuses (rules that are not a list, a target without a string
`modelRewrite`, a negative weight, an unparsable timestamp) is logged and contributes nothing;
nothing raises into the watch.

Threads: as `ObjectiveStore` (module `objectives`): `reconcile` and `choose` run on the event
loop; a change rebuilds an immutable index and publishes it with one assignment. The targets'
choices are built at reconcile time, so `choose` allocates nothing.
"""

from __future__ import annotations

import itertools
import random
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import structlog

from igw.epp.requestpath.objectives import (
    DEFAULT_POOL_GROUP,
    InvalidObjectError,
    OwnPool,
    mapping_at,
    name_of,
)

__all__ = ["ModelRewriteStore", "ModelRewrites", "RewriteChoice"]

_log = structlog.get_logger(__name__)

_ZERO_TIME: Final = datetime.min.replace(tzinfo=UTC)
"""An absent creationTimestamp: Go's zero time, older than any other."""


@dataclass(frozen=True, slots=True)
class RewriteChoice:
    """A rule's decision for one request."""

    rewrite: str
    """The `InferenceModelRewrite` the rule belongs to (the metric's `model_rewrite_name`)."""
    target: str
    """The model the request is sent as."""


class ModelRewrites(Protocol):
    def choose(self, model: str) -> RewriteChoice | None:
        """The rewrite for an incoming body model; None when no rule applies (or the winning
        rule has no targets). Random when the rule has several targets."""


@dataclass(frozen=True, slots=True)
class _Rule:
    models: frozenset[str] | None
    """The exact models matched; None for a generic rule."""
    choices: tuple[RewriteChoice, ...]
    cumulative: tuple[int, ...]
    """Running sums of the targets' weights."""

    def pick(self, rng: random.Random) -> RewriteChoice | None:
        if not self.choices:
            return None
        total = self.cumulative[-1]
        if total == 0:
            return self.choices[rng.randrange(len(self.choices))]
        return self.choices[bisect_right(self.cumulative, rng.randrange(total))]


@dataclass(frozen=True, slots=True)
class _Rewrite:
    """One object's rules, with what orders it against the others."""

    created: datetime
    name: str
    key: str
    rules: tuple[_Rule, ...]


@dataclass(frozen=True, slots=True)
class _Index:
    exact: Mapping[str, _Rule]
    """Each exactly-matched model's winning rule."""
    generic: _Rule | None


class ModelRewriteStore:
    """`ModelRewrites` from the pool's `InferenceModelRewrite` objects; see the module docstring."""

    def __init__(
        self,
        pool_name: str,
        *,
        pool_group: str = DEFAULT_POOL_GROUP,
        pool_namespace: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.pool = OwnPool(pool_name, pool_group, pool_namespace)
        self.rng = rng if rng is not None else random.Random()  # noqa: S311 - traffic split
        self._entries: dict[str, _Rewrite] = {}  # replaced, never mutated
        self._index = _Index({}, None)

    def choose(self, model: str) -> RewriteChoice | None:
        index = self._index
        rule = index.exact.get(model, index.generic)
        return None if rule is None else rule.pick(self.rng)

    def reconcile(self, key: str, obj: Mapping[str, Any] | None) -> None:
        """Makes `key`'s entry match `obj` (`namespace/name`; None = the object is gone)."""
        try:
            spec = self.pool.spec_of(key, obj)
            entry = None if spec is None or obj is None else _rewrite(key, obj, spec)
        except InvalidObjectError as e:
            _log.warning("epp.rewrites.invalid", key=key, reason=str(e))
            entry = None
        if self._entries.get(key) == entry:
            return  # a replay, or an object that was never ours
        entries = dict(self._entries)
        if entry is None:
            del entries[key]
            _log.info("epp.rewrites.removed", key=key)
        else:
            entries[key] = entry
            _log.info("epp.rewrites.set", key=key, rules=len(entry.rules))
        self._entries, self._index = entries, _build(entries.values())


def _build(rewrites: Iterable[_Rewrite]) -> _Index:
    """Each model's winner: oldest object first, then name, then list order."""
    exact: dict[str, _Rule] = {}
    generic: _Rule | None = None
    for rewrite in sorted(rewrites, key=lambda r: (r.created, r.name, r.key)):
        for rule in rewrite.rules:
            if rule.models is None:
                if generic is None:
                    generic = rule
            else:
                for model in rule.models:
                    exact.setdefault(model, rule)
    return _Index(exact, generic)


def _rewrite(key: str, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> _Rewrite:
    name = name_of(key)
    rules = _list_at(spec, "rules", "spec")
    parsed = tuple(_rule(name, raw, f"spec.rules[{i}]") for i, raw in enumerate(rules))
    created = _timestamp(mapping_at(obj, "metadata").get("creationTimestamp"))
    return _Rewrite(created, name, key, parsed)


def _rule(name: str, raw: object, where: str) -> _Rule:
    if not isinstance(raw, Mapping):
        raise InvalidObjectError(f"{where} is not a map")
    matches = _list_at(raw, "matches", where)
    models: set[str] = set()
    for match in matches:
        if not isinstance(match, Mapping):
            raise InvalidObjectError(f"{where}.matches has an entry that is not a map")
        model = match.get("model")
        if model is None:
            continue  # upstream: such a match names no model
        value = model.get("value") if isinstance(model, Mapping) else None
        if not isinstance(value, str):
            raise InvalidObjectError(f"{where}.matches has a model without a string value")
        models.add(value)
    targets = [_target(name, t, f"{where}.targets") for t in _list_at(raw, "targets", where)]
    return _Rule(
        frozenset(models) if matches else None,
        tuple(choice for choice, _ in targets),
        tuple(itertools.accumulate(weight for _, weight in targets)),
    )


def _target(name: str, raw: object, where: str) -> tuple[RewriteChoice, int]:
    """A target's choice and weight (absent: 0)."""
    if not isinstance(raw, Mapping):
        raise InvalidObjectError(f"{where} has an entry that is not a map")
    model = raw.get("modelRewrite")
    if not isinstance(model, str):
        raise InvalidObjectError(f"{where} has an entry without a string modelRewrite")
    weight = raw.get("weight")
    if weight is None:
        weight = 0
    elif isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
        raise InvalidObjectError(f"{where} has a weight that is not a non-negative integer")
    return RewriteChoice(name, model), weight


def _list_at(obj: Mapping[str, Any], field: str, where: str) -> Sequence[Any]:
    value = obj.get(field)
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidObjectError(f"{where}.{field} is not a list")
    return value


def _timestamp(value: object) -> datetime:
    if value is None:
        return _ZERO_TIME
    if not isinstance(value, str):
        raise InvalidObjectError("metadata.creationTimestamp is not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        problem = f"metadata.creationTimestamp {value!r} is not a timestamp"
        raise InvalidObjectError(problem) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
