"""The fake API server's storage: objects, one global resourceVersion counter, event history.

Like etcd behind kube-apiserver, every write (create, update, delete) takes the next value of ONE
counter shared by all kinds; the stored object's `metadata.resourceVersion` is that value, and a
DELETED event carries the deletion's value. An update that changes nothing is not written (no new
resourceVersion, no event), as with the real server's no-op updates.

History: every event is kept in resourceVersion order until `compact()`, which forgets it all; the
oldest resourceVersion a watch may then resume from is the counter's value at compaction (`floor`).
Resuming from older answers 410 Expired `too old resource version: X (floor)`, the watch cache's
wording. LIST with `resourceVersionMatch=Exact` rebuilds the state at that version from history.

Concurrency: one re-entrant lock guards everything, so `FakeKubeApi.put()` may be called from a
test thread as well as from the loop. A watch subscribes under the same lock it takes the replay
from, so it sees every event exactly once; each event reaches a watcher's asyncio queue through
`call_soon_threadsafe`, in commit order. `EndOfWatch` in a queue ends that watch cleanly.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import copy
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from igw.common.testing._kube_resources import ResourceType
from igw.common.testing._kube_selectors import Selector
from igw.common.testing._kube_status import (
    already_exists,
    conflict,
    expired,
    invalid,
    not_found,
    too_large_resource_version,
)

__all__ = ["EndOfWatch", "Event", "Store", "Watcher"]

_Key = tuple[ResourceType, str, str]
"""(resource type, namespace or "" when cluster-scoped, name)."""


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    """ADDED, MODIFIED or DELETED."""
    resource: ResourceType
    obj: dict[str, Any]
    """The object after the write; for DELETED, its last state with the deletion's version."""
    prev: dict[str, Any] | None
    """The object before the write; None for ADDED."""
    version: int


@dataclass(frozen=True, slots=True)
class EndOfWatch:
    version: int
    """The store's resourceVersion when the watch was ended, for a closing BOOKMARK."""


@dataclass(eq=False)
class Watcher:
    """One open watch: events of `resource` are queued for its stream."""

    resource: ResourceType
    loop: asyncio.AbstractEventLoop
    version: int
    """The store's resourceVersion when the watch subscribed: its replay is complete up to it."""
    queue: asyncio.Queue[Event | EndOfWatch] = field(default_factory=asyncio.Queue)

    def offer(self, item: Event | EndOfWatch) -> None:
        # A closed loop raises RuntimeError: the stream is gone with it.
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    """What `metadata.generation` tracks: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _version_of(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Store:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[_Key, dict[str, Any]] = {}
        self._history: list[Event] = []
        self._version = 0
        self._floor = 0
        self._watchers: set[Watcher] = set()

    @property
    def version(self) -> int:
        return self._version

    def get(self, resource: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._objects.get((resource, namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def query(
        self, resource: ResourceType, selector: Selector, exact: int | None = None
    ) -> tuple[list[dict[str, Any]], int]:
        """Matching objects sorted by namespace/name, and the version they are as of."""
        with self._lock:
            if exact is None or exact == self._version:
                state, version = self._objects, self._version
            else:
                state, version = self._state_at(exact), exact
            items = [
                copy.deepcopy(obj)
                for key, obj in sorted(state.items(), key=lambda item: item[0][1:])
                if key[0] == resource and selector.matches(obj)
            ]
            return items, version

    def _state_at(self, version: int) -> dict[_Key, dict[str, Any]]:
        if version > self._version:
            raise too_large_resource_version(version, self._version)
        if version < self._floor:
            raise expired("The resourceVersion for the provided list is too old.")
        state = dict(self._objects)
        for event in reversed(self._history[self._after(version) :]):
            key = _key(event.resource, event.obj)
            if event.prev is None:
                del state[key]
            else:
                state[key] = event.prev
        return state

    def _after(self, version: int) -> int:
        """Index of the first history event newer than `version`."""
        return bisect.bisect_right(self._history, version, key=lambda event: event.version)

    def write(
        self, resource: ResourceType, obj: dict[str, Any], *, keep_identity: bool = False
    ) -> dict[str, Any]:
        """Create or replace unconditionally; `keep_identity` keeps a given uid/creation time."""
        with self._lock:
            key = _key(resource, obj)
            return self._commit(resource, key, obj, self._objects.get(key), keep_identity)

    def create(self, resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            key = _key(resource, obj)
            if key in self._objects:
                raise already_exists(resource.qualified, resource.group, resource.plural, key[2])
            return self._commit(resource, key, obj, None, keep_identity=False)

    def update(
        self, resource: ResourceType, obj: dict[str, Any], *, subresource: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """A PUT (or a PATCH's result): optimistic concurrency; returns (stored, created)."""
        with self._lock:
            key = _key(resource, obj)
            current = self._objects.get(key)
            name = key[2]
            if current is None:
                if not resource.create_on_update or subresource is not None:
                    raise not_found(resource.qualified, resource.group, resource.plural, name)
                return self._commit(resource, key, obj, None, keep_identity=False), True
            given = _version_of(obj)
            if not given and not resource.unconditional_update:
                raise invalid(
                    resource.qualified_kind,
                    resource.group,
                    resource.kind,
                    name,
                    field="metadata.resourceVersion",
                    cause="FieldValueInvalid",
                    why="Invalid value: 0x0: must be specified for an update",
                )
            if given and given != _version_of(current):
                raise conflict(
                    resource.qualified,
                    resource.group,
                    resource.plural,
                    name,
                    "the object has been modified; please apply your changes to the latest "
                    "version and try again",
                )
            merged = _apply_subresource(resource, current, obj, subresource)
            return self._commit(resource, key, merged, current, keep_identity=False), False

    def delete(
        self, resource: ResourceType, namespace: str, name: str, preconditions: dict[str, Any]
    ) -> dict[str, Any]:
        with self._lock:
            key = (resource, namespace, name)
            current = self._objects.get(key)
            if current is None:
                raise not_found(resource.qualified, resource.group, resource.plural, name)
            _check_preconditions(resource, current, preconditions)
            del self._objects[key]
            self._version += 1
            gone = copy.deepcopy(current)
            gone["metadata"]["resourceVersion"] = str(self._version)
            self._publish(Event("DELETED", resource, gone, current, self._version))
            return copy.deepcopy(gone)

    def _commit(
        self,
        resource: ResourceType,
        key: _Key,
        obj: dict[str, Any],
        current: dict[str, Any] | None,
        keep_identity: bool,
    ) -> dict[str, Any]:
        stored = copy.deepcopy(obj)
        stored["apiVersion"], stored["kind"] = resource.api_version, resource.kind
        metadata = stored.setdefault("metadata", {})
        if resource.namespaced:
            metadata["namespace"] = key[1]
        if current is None:
            metadata["uid"] = (keep_identity and metadata.get("uid")) or str(uuid.uuid4())
            stamp = keep_identity and metadata.get("creationTimestamp")
            metadata["creationTimestamp"] = stamp or _now()
            if resource.generation:
                metadata["generation"] = 1
        else:
            for kept in ("uid", "creationTimestamp", "generation"):
                if kept in current["metadata"]:
                    metadata[kept] = current["metadata"][kept]
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
            if stored == current:
                return copy.deepcopy(current)
            if resource.generation and _content(stored) != _content(current):
                metadata["generation"] = current["metadata"].get("generation", 0) + 1
        self._version += 1
        metadata["resourceVersion"] = str(self._version)
        self._objects[key] = stored
        kind = "ADDED" if current is None else "MODIFIED"
        self._publish(Event(kind, resource, copy.deepcopy(stored), current, self._version))
        return copy.deepcopy(stored)

    def _publish(self, event: Event) -> None:
        self._history.append(event)
        for watcher in self._watchers:
            if watcher.resource == event.resource:
                watcher.offer(event)

    def compact(self) -> None:
        with self._lock:
            self._history.clear()
            self._floor = self._version

    def watch(
        self, resource: ResourceType, since: int | None, loop: asyncio.AbstractEventLoop
    ) -> tuple[list[Event], Watcher]:
        """Subscribe; the replay is the current objects as ADDED (`since` None) or the history."""
        with self._lock:
            if since is None:
                replay = [
                    Event("ADDED", resource, copy.deepcopy(obj), None, self._version)
                    for key, obj in sorted(self._objects.items(), key=lambda item: item[0][1:])
                    if key[0] == resource
                ]
            elif since > self._version:
                raise too_large_resource_version(since, self._version)
            elif since < self._floor:
                raise expired(f"too old resource version: {since} ({self._floor})")
            else:
                start = self._after(since)
                replay = [e for e in self._history[start:] if e.resource == resource]
            watcher = Watcher(resource, loop, self._version)
            self._watchers.add(watcher)
            return replay, watcher

    def unwatch(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.discard(watcher)

    def end_watches(self) -> None:
        with self._lock:
            for watcher in self._watchers:
                watcher.offer(EndOfWatch(self._version))


def _key(resource: ResourceType, obj: dict[str, Any]) -> _Key:
    metadata = obj.get("metadata") or {}
    namespace = str(metadata.get("namespace") or "") if resource.namespaced else ""
    return (resource, namespace, str(metadata.get("name") or ""))


def _apply_subresource(
    resource: ResourceType, current: dict[str, Any], obj: dict[str, Any], subresource: str | None
) -> dict[str, Any]:
    """A `/status` write changes only status; a main write keeps status (when it is separate)."""
    if not resource.status_subresource:
        return obj
    if subresource == "status":
        merged = copy.deepcopy(current)
        merged["metadata"]["resourceVersion"] = _version_of(obj) or _version_of(current)
        if "status" in obj:
            merged["status"] = obj["status"]
        else:
            merged.pop("status", None)
        return merged
    merged = {k: v for k, v in obj.items() if k != "status"}
    if "status" in current:
        merged["status"] = current["status"]
    return merged


def _check_preconditions(
    resource: ResourceType, current: dict[str, Any], preconditions: dict[str, Any]
) -> None:
    metadata = current["metadata"]
    for field_name, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
        wanted = preconditions.get(field_name)
        if wanted is not None and wanted != metadata.get(field_name):
            why = (
                f"Precondition failed: {label} in precondition: {wanted}, "
                f"{label} in object meta: {metadata.get(field_name)}"
            )
            raise conflict(
                resource.qualified, resource.group, resource.plural, metadata["name"], why
            )
