"""The WATCH stream, as kube-apiserver's watch cache serves it.

A watch answers 200 with a chunked body of JSON lines `{"type": ..., "object": ...}`:

1. the replay: without a resourceVersion (or "0") every current object as ADDED, otherwise the
   history after that version. Too old a version answers ONE `ERROR` event whose object is the
   410 Expired Status, then ends; a version the store has not reached answers the 504
   `Too large resource version` Status the same way (the real cache first waits 3 s for it).
   Bad parameters (selectors, a non-numeric version) are plain 400 answers, not events.
2. live events. Selectors are applied to the object before and after each change, so an object
   that starts matching arrives as ADDED and one that stops matching as DELETED (its old content
   with the new version), as the cacher's `convertToWatchEvent` does.
3. the end: `timeoutSeconds` elapsing or `end_watches()` finish the body cleanly, after a BOOKMARK
   when `allowWatchBookmarks` is set. `sendInitialEvents=true` (the streaming list) closes its
   replay with a BOOKMARK annotated `k8s.io/initial-events-end: "true"`.

Not reproduced: periodic bookmarks (the real server sends about one a minute) and the server's
own 30-60 min watch timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from igw.common.testing._kube_resources import ResourceType
from igw.common.testing._kube_selectors import Selector
from igw.common.testing._kube_status import StatusError, bad_request
from igw.common.testing._kube_store import EndOfWatch, Event, Store, Watcher

__all__ = ["WatchRequest", "parse_bool", "serve_watch"]

_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})


def parse_bool(query: Mapping[str, str], name: str) -> bool | None:
    """A boolean query parameter as Go's `strconv.ParseBool` reads it; None when absent."""
    text = query.get(name)
    if text is None:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise bad_request(f'invalid value for {name}: strconv.ParseBool: parsing "{text}"')


def parse_version(text: str | None) -> int | None:
    """A resourceVersion parameter; None for "" and "0" (any / most recent)."""
    if text in (None, "", "0"):
        return None
    try:
        version = int(text)
    except ValueError:
        version = -1
    if version < 0:
        raise bad_request(f"invalid resource version: {text}")
    return version


class WatchRequest:
    """The parameters of one watch, parsed (and refused with a 400) before the stream starts."""

    def __init__(self, resource: ResourceType, selector: Selector, query: Mapping[str, str]):
        self.resource = resource
        self.selector = selector
        self.since = parse_version(query.get("resourceVersion"))
        self.bookmarks = parse_bool(query, "allowWatchBookmarks") or False
        self.initial_events = parse_bool(query, "sendInitialEvents")
        timeout = query.get("timeoutSeconds")
        try:
            self.timeout = float(int(timeout)) if timeout else None
        except ValueError:
            raise bad_request(f"invalid timeoutSeconds: {timeout}") from None


def _line(kind: str, obj: dict[str, Any]) -> bytes:
    return orjson.dumps({"type": kind, "object": obj}) + b"\n"


def _translate(event: Event, selector: Selector) -> bytes | None:
    """The event as this watch sees it, or None when it concerns no matching object."""
    now = event.type != "DELETED" and selector.matches(event.obj)
    before = event.prev is not None and selector.matches(event.prev)
    if now:
        return _line("MODIFIED" if before else "ADDED", event.obj)
    if before and event.prev is not None:
        gone = {**event.prev, "metadata": {**event.prev["metadata"]}}
        gone["metadata"]["resourceVersion"] = str(event.version)
        return _line("DELETED", gone)
    return None


def _bookmark(resource: ResourceType, version: int, *, initial_end: bool = False) -> bytes:
    metadata: dict[str, Any] = {"resourceVersion": str(version)}
    if initial_end:
        metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj = {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": metadata}
    return _line("BOOKMARK", obj)


async def _open(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    return response


async def serve_watch(
    request: web.Request, store: Store, watch: WatchRequest
) -> web.StreamResponse:
    """Stream events until the timeout, `end_watches()`, or the connection goes away."""
    since = None if watch.initial_events else watch.since
    try:
        replay, watcher = store.watch(watch.resource, since, asyncio.get_running_loop())
    except StatusError as error:
        response = await _open(request)
        await response.write(_line("ERROR", error.status()))
        await response.write_eof()
        return response
    try:
        response = await _open(request)
        if watch.initial_events is not False or watch.since is not None:
            for event in replay:
                if line := _translate(event, watch.selector):
                    await response.write(line)
        if watch.initial_events and watch.bookmarks:
            await response.write(_bookmark(watch.resource, watcher.version, initial_end=True))
        ended = await _follow(response, watcher, watch)
        if watch.bookmarks:
            await response.write(_bookmark(watch.resource, ended))
        await response.write_eof()
        return response
    finally:
        store.unwatch(watcher)


async def _follow(response: web.StreamResponse, watcher: Watcher, watch: WatchRequest) -> int:
    """Relay live events; returns the version a closing BOOKMARK may name.

    On a timeout that is the last event taken from the queue: later ones may still be queued,
    and a client resuming from the bookmark gets them from the history.
    """
    last = watcher.version
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(watch.timeout):
            while True:
                item = await watcher.queue.get()
                if isinstance(item, EndOfWatch):
                    return item.version
                last = item.version
                if line := _translate(item, watch.selector):
                    await response.write(line)
    return last
