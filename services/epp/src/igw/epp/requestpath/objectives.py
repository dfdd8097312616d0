"""Objective name (`x-gateway-inference-objective`) -> priority (§5.1, §8.2).

Two sources of the table: `StaticObjectives`, the `--objective` flag's fixed map, and
`ObjectiveStore`, fed by the watch on `InferenceObjective` (`inference.networking.x-k8s.io/
v1alpha2`). An unknown or absent objective means priority 0. `OwnPool` (which objects belong to
this EPP's pool) and `InvalidObjectError` are shared with the `InferenceModelRewrite` store.

Upstream behaviour matched (GIE v1.5.0):

* `pkg/epp/controller/inferenceobjective_reconciler.go`: an objective is kept while its
  `spec.poolRef` name **and** group equal the EPP's pool (the kind is not checked); one that is
  gone, carries a `metadata.deletionTimestamp`, or points at another pool is removed.
* `apix/v1alpha2/shared_types.go`: `poolRef.group` defaults to `inference.networking.k8s.io`. It
  is a CRD default, so only an absent group takes it; an explicit `""` matches no v1 pool.
* `pkg/epp/datastore/datastore.go`: objectives are looked up by name alone; the manager's cache
  only watches the pool's namespace (`pkg/epp/server/controller_manager.go`). `OwnPool.namespace`
  does the same for a wider watch; with neither, two objects of one name in different
  namespaces resolve to the smallest `namespace/name` key, whatever order their events came in.
* `pkg/epp/requestcontrol/director.go` (`getInferenceObjective`): no objective, or no
  `spec.priority`, is priority 0.

Level-triggered (STYLE §13): `reconcile(key, obj)` makes the key's entry match the object
(`None` = deleted); replaying an object changes nothing. An object the CRD's schema would refuse
(a spec that is not a map, a priority that is not an integer) is logged and contributes nothing:
nothing raises into the watch.

Threads: `reconcile` and `priority` both run on the event loop (the discovery layer hands watch
events to it). A change builds a new name -> priority map and publishes it with one assignment, so
no lock is needed and a reader never sees half a change (STYLE §12).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import structlog

__all__ = [
    "DEFAULT_POOL_GROUP",
    "InvalidObjectError",
    "ObjectiveStore",
    "Objectives",
    "OwnPool",
    "StaticObjectives",
]

DEFAULT_POOL_GROUP: Final = "inference.networking.k8s.io"
"""`spec.poolRef.group` when the object leaves it out (the CRD's default)."""

_log = structlog.get_logger(__name__)


class Objectives(Protocol):
    def priority(self, objective: str | None) -> int:
        """The objective's priority; 0 when it is None or unknown. Negative = sheddable."""


class StaticObjectives:
    """A fixed name -> priority table."""

    def __init__(self, priorities: Mapping[str, int] | None = None) -> None:
        self._priorities = dict(priorities or {})

    def priority(self, objective: str | None) -> int:
        if objective is None:
            return 0
        return self._priorities.get(objective, 0)


class InvalidObjectError(ValueError):
    """An object of a shape its CRD's schema refuses (a real API server never sends one). The
    stores' `reconcile` catches it, logs it and drops the key; it never reaches the watch."""


@dataclass(frozen=True, slots=True)
class OwnPool:
    """The InferencePool this EPP serves, as objects name it in `spec.poolRef`."""

    name: str
    group: str = DEFAULT_POOL_GROUP
    namespace: str | None = None
    """When set, objects of other namespaces are ignored; None trusts a namespaced watch."""

    def spec_of(self, key: str, obj: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """`obj`'s spec when it is live and refers to this pool; None when it is gone, being
        deleted, in another namespace or for another pool. Raises `InvalidObjectError`."""
        if obj is None:
            return None
        if self.namespace is not None and key.partition("/")[0] != self.namespace:
            return None
        if not isinstance(obj, Mapping):
            raise InvalidObjectError("not a map")
        if mapping_at(obj, "metadata").get("deletionTimestamp"):
            return None
        spec = mapping_at(obj, "spec")
        ref = spec.get("poolRef")
        if ref is None:  # upstream's rewrite reconciler: a nil poolRef is not ours
            return None
        if not isinstance(ref, Mapping):
            raise InvalidObjectError("spec.poolRef is not a map")
        if ref.get("name") != self.name or ref.get("group", DEFAULT_POOL_GROUP) != self.group:
            return None
        return spec


def mapping_at(obj: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    """`obj[field]` as a map ({} when absent); raises `InvalidObjectError` for anything else."""
    value = obj.get(field)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidObjectError(f"{field} is not a map")
    return value


def name_of(key: str) -> str:
    """The object name of a `namespace/name` key."""
    return key.rpartition("/")[2]


class ObjectiveStore:
    """`Objectives` from the pool's `InferenceObjective` objects; see the module docstring."""

    def __init__(
        self,
        pool_name: str,
        *,
        pool_group: str = DEFAULT_POOL_GROUP,
        pool_namespace: str | None = None,
    ) -> None:
        self.pool = OwnPool(pool_name, pool_group, pool_namespace)
        self._entries: dict[str, int] = {}  # key -> priority; replaced, never mutated
        self._priorities: dict[str, int] = {}  # name -> priority; replaced, never mutated

    @property
    def priorities(self) -> Mapping[str, int]:
        """The published name -> priority table (read-only by convention)."""
        return self._priorities

    def priority(self, objective: str | None) -> int:
        if objective is None:
            return 0
        return self._priorities.get(objective, 0)

    def reconcile(self, key: str, obj: Mapping[str, Any] | None) -> None:
        """Makes `key`'s entry match `obj` (`namespace/name`; None = the object is gone)."""
        try:
            spec = self.pool.spec_of(key, obj)
            priority = None if spec is None else _priority(spec)
        except InvalidObjectError as e:
            _log.warning("epp.objectives.invalid", key=key, reason=str(e))
            priority = None
        if self._entries.get(key) == priority:
            return  # a replay, or an object that was never ours
        entries = dict(self._entries)
        if priority is None:
            del entries[key]
            _log.info("epp.objectives.removed", key=key)
        else:
            entries[key] = priority
            _log.info("epp.objectives.set", key=key, priority=priority)
        # Smallest key written last, so it wins a name shared across namespaces.
        by_name = {name_of(k): p for k, p in sorted(entries.items(), reverse=True)}
        self._entries, self._priorities = entries, by_name


def _priority(spec: Mapping[str, Any]) -> int:
    priority = spec.get("priority")
    if priority is None:
        return 0
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidObjectError("spec.priority is not an integer")
    return priority
