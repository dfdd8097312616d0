"""The list and watch requests of an `Informer`, answered as raw JSON dicts.

Both requests go through the official client's list function with `_preload_content=False`, so
objects arrive as the API server sent them (no typed models, no re-serialization) and the open
watch's socket stays reachable for `shut()`. A non-2xx answer raises the client's `ApiException`;
an `ERROR` event inside a watch stream raises `WatchError` with the `Status` code (410 when the
resourceVersion was compacted away).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes
import orjson

from igw.common.kube._kind import ListCall

__all__ = [
    "Object",
    "Query",
    "WatchError",
    "close",
    "events",
    "list_objects",
    "object_key",
    "open_watch",
    "resource_version",
    "shut",
]

Object = dict[str, Any]


class WatchError(Exception):
    """The API server ended a watch with an `ERROR` event; `status` is the `Status` code."""

    def __init__(self, status_object: Object) -> None:
        code = status_object.get("code")
        self.status = code if isinstance(code, int) else None
        reason, message = status_object.get("reason"), status_object.get("message")
        super().__init__(f"watch error {self.status} {reason}: {message}")


@dataclass(frozen=True, slots=True)
class Query:
    """Which objects to ask for, and how long to wait for the answer."""

    call: ListCall
    label_selector: str | None
    field_selector: str | None
    connect_timeout_s: float


def list_objects(query: Query, read_timeout_s: float) -> tuple[list[Object], str | None]:
    """The objects of one list request and the list's resourceVersion."""
    function, args = query.call
    response = function(
        *args,
        label_selector=query.label_selector,
        field_selector=query.field_selector,
        _preload_content=False,
        _request_timeout=(query.connect_timeout_s, read_timeout_s),
    )
    try:
        body = orjson.loads(response.data)
    finally:
        response.release_conn()
    if not isinstance(body, dict):
        raise TypeError(f"a list answer that is not an object: {type(body).__name__}")
    list_kind, api_version = body.get("kind"), body.get("apiVersion")
    items = [item for item in body.get("items") or () if isinstance(item, dict)]
    for item in items:
        # List items come without their type; watch events carry it. Make both look alike.
        if isinstance(api_version, str):
            item.setdefault("apiVersion", api_version)
        if isinstance(list_kind, str) and list_kind.endswith("List"):
            item.setdefault("kind", list_kind.removesuffix("List"))
    return items, resource_version(body)


def open_watch(query: Query, version: str | None, timeout_s: int, read_timeout_s: float) -> Any:
    """Start a watch from `version`; returns the open urllib3 response (pass it to `events`)."""
    function, args = query.call
    return function(
        *args,
        watch=True,
        allow_watch_bookmarks=True,
        resource_version=version,
        timeout_seconds=timeout_s,
        label_selector=query.label_selector,
        field_selector=query.field_selector,
        _preload_content=False,
        _request_timeout=(query.connect_timeout_s, read_timeout_s),
    )


def events(response: Any) -> Iterator[Object]:
    """The events of a watch stream until the server ends it; an `ERROR` event raises."""
    for line in kubernetes.watch.watch.iter_resp_lines(response):  # type: ignore[no-untyped-call]  # untyped client API
        if not line.strip():
            continue
        event = orjson.loads(line)
        if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
            continue
        if event.get("type") == "ERROR":
            raise WatchError(event["object"])
        yield event


def shut(response: Any) -> None:
    """Shut the socket under an open watch: a read blocked on it (another thread's) ends at once."""
    connection = getattr(response, "connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed: nothing is blocked on it
            sock.shutdown(socket.SHUT_RDWR)


def close(response: Any) -> None:
    """Close a watch response and hand its (possibly dead) connection back to the pool."""
    response.close()
    response.release_conn()


def object_key(obj: Object) -> str | None:
    """`namespace/name`, or `name` for a cluster-scoped object; `None` without a name."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return None
    name: str = meta["name"]
    namespace = meta.get("namespace")
    return f"{namespace}/{name}" if isinstance(namespace, str) and namespace else name


def resource_version(obj: Object) -> str | None:
    meta = obj.get("metadata")
    version = meta.get("resourceVersion") if isinstance(meta, dict) else None
    return version if isinstance(version, str) and version else None
