"""The LoRA-adapter -> base-model index behind the BBR's `X-Gateway-Base-Model-Name` header.

Sources (the ConfigMap watch, the local file) describe the world as per-key entries: one
`AdapterSet` (a base model and its adapters) per ConfigMap `namespace/name`, or per file entry.
`AdapterIndex.reconcile(key, data)` is level-triggered and idempotent: it makes the entry for `key`
match `data` (`None` = the object is gone), so replaying an event or a whole relist changes nothing.

Lookup (upstream semantics): an adapter name -> its base model; a name that is itself a declared
base model -> itself; anything else -> `None` (the header is then set to an empty string). A base
model stays known while at least one entry declares it (ref-counted per key), so deleting one of
two ConfigMaps sharing a base keeps the base known.

Conflicts: when two keys claim the same adapter for different base models, the lexicographically
smallest key wins and a warning names both keys. A name that is both an adapter and a base model
resolves as an adapter. Invalid data (no `baseModel`, `adapters` not a YAML list of strings) makes
that key contribute nothing; a warning names the key and the problem. Nothing here raises into a
watch loop.

Each snapshot also records when every name it knows (base model or adapter) first appeared, as
`learned` (Unix seconds; a name that goes and comes back is learned anew): the `created` time the
BBR's `GET /v1/models` reports.

Threads: writers (source threads) serialise on a lock, rebuild an immutable `AdapterSnapshot` and
publish it with one attribute assignment. Readers on the event loop only read that attribute, so
they never lock and never see a half-applied change.
"""

from __future__ import annotations

import collections
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
import yaml

__all__ = [
    "ADAPTERS_KEY",
    "BASE_MODEL_KEY",
    "BBR_MANAGED_LABEL",
    "AdapterConflict",
    "AdapterDataError",
    "AdapterIndex",
    "AdapterSet",
    "AdapterSnapshot",
    "parse_configmap_data",
]

BBR_MANAGED_LABEL = "inference.networking.k8s.io/bbr-managed"
BASE_MODEL_KEY = "baseModel"
ADAPTERS_KEY = "adapters"

_log = structlog.get_logger(__name__)

_V = TypeVar("_V")


@dataclass(frozen=True, slots=True)
class AdapterSet:
    """One base model and the LoRA adapters served on it (one ConfigMap or file entry)."""

    base_model: str
    adapters: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AdapterDataError:
    """Why a ConfigMap's data describes no `AdapterSet`; returned, not raised."""

    reason: str


@dataclass(frozen=True, slots=True)
class AdapterConflict:
    """An adapter claimed for two base models: `winner_key` (the smaller key) decides."""

    adapter: str
    winner_key: str
    winner_base: str
    loser_key: str
    loser_base: str


@dataclass(frozen=True, slots=True)
class AdapterSnapshot:
    """An immutable view of the index; `base_model_of` is the hot-path lookup."""

    adapters: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}))
    base_models: Mapping[str, int] = field(default_factory=lambda: types.MappingProxyType({}))
    entries: Mapping[str, AdapterSet] = field(default_factory=lambda: types.MappingProxyType({}))
    invalid: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}))
    conflicts: tuple[AdapterConflict, ...] = ()
    learned: Mapping[str, int] = field(default_factory=lambda: types.MappingProxyType({}))
    """Each known name (base model or adapter) -> when it first appeared, in Unix seconds."""

    def base_model_of(self, name: str) -> str | None:
        """The base model serving `name`, `name` itself for a base model, else `None`."""
        base = self.adapters.get(name)
        if base is not None:
            return base
        return name if name in self.base_models else None


def parse_configmap_data(data: Mapping[str, object]) -> AdapterSet | AdapterDataError:
    """Validate a bbr-managed ConfigMap's `data`: `baseModel` and an optional `adapters` list.

    `adapters` is a YAML list of names inside a string (ConfigMap values are strings); a missing
    or empty `adapters` declares just the base model. Values are checked, not trusted: they come
    from an untyped API client or a user's file.
    """
    base = data.get(BASE_MODEL_KEY)
    if not isinstance(base, str) or not base.strip():
        return AdapterDataError(f"data.{BASE_MODEL_KEY} is missing or empty")
    raw = data.get(ADAPTERS_KEY, "")
    if not isinstance(raw, str):
        return AdapterDataError(f"data.{ADAPTERS_KEY} must be a string holding a YAML list")
    try:
        parsed = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        return AdapterDataError(f"data.{ADAPTERS_KEY} is not valid YAML: {_yaml_problem(exc)}")
    if parsed is None:
        parsed = []
    if not isinstance(parsed, list):
        kind = type(parsed).__name__
        return AdapterDataError(f"data.{ADAPTERS_KEY} must be a YAML list of names, got {kind}")
    bad = [item for item in parsed if not isinstance(item, str) or not item.strip()]
    if bad:
        return AdapterDataError(f"data.{ADAPTERS_KEY} has entries that are not names: {bad!r}")
    return AdapterSet(base_model=base.strip(), adapters=frozenset(a.strip() for a in parsed))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    # One line for a log field, rather than PyYAML's multi-line rendering with a source excerpt.
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        return f"{exc.problem} (line {exc.problem_mark.line + 1})"
    return str(exc)


class AdapterIndex:
    """Per-key adapter entries folded into an atomically swapped `AdapterSnapshot`."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._snapshot = AdapterSnapshot()
        self._clock = clock

    def base_model_of(self, name: str) -> str | None:
        """Lock-free lookup; see `AdapterSnapshot.base_model_of`."""
        return self._snapshot.base_model_of(name)

    def snapshot(self) -> AdapterSnapshot:
        """The current immutable state, for health pages, debugging and tests."""
        return self._snapshot

    def reconcile(self, key: str, data: Mapping[str, object] | None) -> None:
        """Make `key`'s entry match a ConfigMap's `data`; `None` means the ConfigMap is gone."""
        if data is None:
            self._update({key: (None, None)})
            return
        parsed = parse_configmap_data(data)
        if isinstance(parsed, AdapterDataError):
            self._update({key: (None, parsed.reason)})
        else:
            self._update({key: (parsed, None)})

    def set_entry(self, key: str, entry: AdapterSet | None) -> None:
        """Make `key`'s entry match an already validated `AdapterSet` (`None` removes it)."""
        self._update({key: (entry, None)})

    def set_entries(self, entries: Mapping[str, AdapterSet | None]) -> None:
        """Several `set_entry` calls as one change: readers see all of them or none (a file
        source applies a whole file at once)."""
        self._update({key: (entry, None) for key, entry in entries.items()})

    def _update(self, changes: Mapping[str, _Change]) -> None:
        """Applies (entry, invalid reason) per key under one snapshot swap."""
        with self._lock:
            old = self._snapshot
            if all(
                old.entries.get(key) == new_entry and old.invalid.get(key) == new_invalid
                for key, (new_entry, new_invalid) in changes.items()
            ):
                return  # a replay: the world already looks like this
            entries = dict(old.entries)
            invalids = dict(old.invalid)
            for key, (new_entry, new_invalid) in changes.items():
                _put(entries, key, new_entry)
                _put(invalids, key, new_invalid)
            new = _build(entries, invalids, old.learned, int(self._clock()))
            self._snapshot = new
        for key in changes:
            _log_change(key, old, new)


_Change = tuple[AdapterSet | None, str | None]


def _put(mapping: dict[str, _V], key: str, value: _V | None) -> None:
    if value is None:
        mapping.pop(key, None)
    else:
        mapping[key] = value


def _build(
    entries: Mapping[str, AdapterSet],
    invalid: Mapping[str, str],
    learned_before: Mapping[str, int],
    now: int,
) -> AdapterSnapshot:
    adapters: dict[str, str] = {}
    owners: dict[str, str] = {}
    base_refs: collections.Counter[str] = collections.Counter()
    conflicts: list[AdapterConflict] = []
    for key in sorted(entries):  # sorted: the smallest key claims a contested adapter
        entry = entries[key]
        base_refs[entry.base_model] += 1
        for adapter in sorted(entry.adapters):
            winner = adapters.setdefault(adapter, entry.base_model)
            owners.setdefault(adapter, key)
            if winner != entry.base_model:
                conflicts.append(
                    AdapterConflict(adapter, owners[adapter], winner, key, entry.base_model)
                )
    learned = {name: learned_before.get(name, now) for name in (*base_refs, *adapters)}
    return AdapterSnapshot(
        adapters=types.MappingProxyType(adapters),
        base_models=types.MappingProxyType(dict(base_refs)),
        entries=types.MappingProxyType(dict(entries)),
        invalid=types.MappingProxyType(dict(invalid)),
        conflicts=tuple(conflicts),
        learned=types.MappingProxyType(learned),
    )


def _log_change(key: str, old: AdapterSnapshot, new: AdapterSnapshot) -> None:
    reason = new.invalid.get(key)
    entry = new.entries.get(key)
    if reason is not None:
        _log.warning("bbr.adapters.invalid", key=key, reason=reason)
    elif entry is None:
        _log.info("bbr.adapters.removed", key=key)
    else:
        _log.info(
            "bbr.adapters.updated",
            key=key,
            base_model=entry.base_model,
            adapters=sorted(entry.adapters),
        )
    _log_new_conflicts(new.conflicts, old.conflicts)


def _log_new_conflicts(
    current: Iterable[AdapterConflict], previous: Iterable[AdapterConflict]
) -> None:
    # Only newly appearing conflicts: an unrelated change must not repeat old warnings.
    seen = set(previous)
    for conflict in current:
        if conflict not in seen:
            _log.warning(
                "bbr.adapters.conflict",
                adapter=conflict.adapter,
                chosen_key=conflict.winner_key,
                chosen_base_model=conflict.winner_base,
                ignored_key=conflict.loser_key,
                ignored_base_model=conflict.loser_base,
            )
