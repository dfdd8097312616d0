"""Resource paths and verbs: GET, LIST, WATCH, POST, PUT, PATCH and DELETE on stored kinds.

Paths are kube-apiserver's: `/api/v1[/namespaces/{ns}]/{plural}[/{name}[/status]]` for the core
group and `/apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}[/status]]` for the others;
a namespaced kind without a namespace is the all-namespaces collection (LIST and WATCH only).
Verbs follow the HTTP method as the real `RequestInfoFactory` derives them.

What each verb does like the real registry: POST answers 201 (409 AlreadyExists, 500 when
`metadata.resourceVersion` is set, 422 without a name; `generateName` works); PUT checks
`metadata.resourceVersion` (409 Conflict when stale; 422 when a custom resource's is missing) and
404s a missing object unless the kind creates on update (Leases, 201); DELETE honours the
DeleteOptions preconditions and answers the object (Pods) or a `Success` Status; writes to the
main resource keep the stored status when the kind has a status subresource, and POST drops it.
PATCH accepts `application/merge-patch+json`, and `application/strategic-merge-patch+json` on
built-in kinds when the patch holds no lists (where strategic merge differs); JSON patch and
server-side apply are refused with 415 rather than applied wrongly. Not reproduced: validation,
defaulting, admission, finalizers and graceful deletion, managedFields, dryRun, pagination
(`limit`/`continue` return everything), deletecollection, and namespaces having to exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from igw.common.testing._kube_resources import ResourceTable, ResourceType
from igw.common.testing._kube_selectors import Selector
from igw.common.testing._kube_status import (
    StatusError,
    bad_request,
    invalid,
    method_not_allowed,
    not_found,
    resource_not_found,
    too_large_resource_version,
    unsupported_media_type,
)
from igw.common.testing._kube_store import Store
from igw.common.testing._kube_watch import WatchRequest, parse_bool, parse_version, serve_watch

__all__ = ["Target", "json_response", "read_object", "resolve", "serve"]

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""What `generateName` suffixes are drawn from (apimachinery's `utilrand`)."""
_MERGE_PATCH = "application/merge-patch+json"
_STRATEGIC_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True, slots=True)
class Target:
    resource: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def json_response(body: Mapping[str, Any], code: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=code, content_type="application/json")


def resolve(table: ResourceTable, path: str) -> Target:
    """The resource a path names; 404 `the server could not find the requested resource`."""
    parts = [part for part in path.split("/") if part]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise resource_not_found()
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource = table.at(group, version, rest[0])
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if (
        resource is None
        or len(rest) > 3
        or (namespace is not None and not resource.namespaced)
        or (name is not None and resource.namespaced and namespace is None)
        or (
            subresource is not None
            and not (subresource == "status" and resource.status_subresource)
        )
    ):
        raise resource_not_found()
    return Target(resource, namespace, name, subresource)


def _verb(method: str, target: Target, query: Mapping[str, str]) -> str:
    named = target.name is not None
    verbs = {
        ("GET", True): "get",
        ("GET", False): "watch" if parse_bool(query, "watch") else "list",
        ("POST", False): "create",
        ("PUT", True): "update",
        ("PATCH", True): "patch",
        ("DELETE", True): "delete",
    }
    verb = verbs.get((method, named))
    allowed = ("get", "patch", "update") if target.subresource else target.resource.verbs
    all_namespaces = target.resource.namespaced and target.namespace is None
    if verb is None or verb not in allowed or (verb == "create" and all_namespaces):
        raise method_not_allowed()
    return verb


async def serve(request: web.Request, store: Store, target: Target) -> web.StreamResponse:
    verb = _verb(request.method, target, request.query)
    return await _VERBS[verb](request, store, target)


async def read_object(request: web.Request, resource: ResourceType) -> dict[str, Any]:
    """The JSON body, its `apiVersion`/`kind` checked against the path (and filled when absent)."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as error:
        raise bad_request(f"the body of the request could not be decoded: {error}") from None
    if not isinstance(body, dict):
        raise bad_request("the body of the request must be a JSON object")
    for field, expected in (("apiVersion", resource.api_version), ("kind", resource.kind)):
        given = body.get(field)
        if given and given != expected:
            raise bad_request(
                f"the {field} in the data ({given}) does not match the expected {field} "
                f"({expected})"
            )
        body[field] = expected
    metadata = body.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object")
    return body


def _place(body: dict[str, Any], target: Target) -> dict[str, Any]:
    """Put the object in the path's namespace; a different namespace in the body is a 400."""
    metadata = body["metadata"]
    if target.resource.namespaced:
        given = metadata.get("namespace")
        if given and given != target.namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the "
                "request"
            )
        metadata["namespace"] = target.namespace
    if target.name is not None:
        given = metadata.setdefault("name", target.name)
        if given != target.name:
            raise bad_request(
                f"the name of the object ({given}) does not match the name on the URL "
                f"({target.name})"
            )
    return body


async def _get(_request: web.Request, store: Store, target: Target) -> web.StreamResponse:
    resource, name = target.resource, target.name or ""
    found = store.get(resource, target.namespace or "", name)
    if found is None:
        raise not_found(resource.qualified, resource.group, resource.plural, name)
    return json_response(found)


def _selector(target: Target, query: Mapping[str, str]) -> Selector:
    return Selector.parse(
        target.namespace,
        query.get("labelSelector", ""),
        query.get("fieldSelector", ""),
        target.resource.field_labels,
    )


async def _list(request: web.Request, store: Store, target: Target) -> web.StreamResponse:
    resource, query = target.resource, request.query
    version = parse_version(query.get("resourceVersion"))
    exact = version if query.get("resourceVersionMatch") == "Exact" else None
    if exact is None and version is not None and version > store.version:
        raise too_large_resource_version(version, store.version)
    items, listed = store.query(resource, _selector(target, query), exact)
    if resource.builtin:  # the real server leaves built-in items' TypeMeta empty
        for item in items:
            item.pop("apiVersion", None)
            item.pop("kind", None)
    body = {
        "kind": f"{resource.kind}List",
        "apiVersion": resource.api_version,
        "metadata": {"resourceVersion": str(listed)},
        "items": items,
    }
    return json_response(body)


async def _watch(request: web.Request, store: Store, target: Target) -> web.StreamResponse:
    watch = WatchRequest(target.resource, _selector(target, request.query), request.query)
    return await serve_watch(request, store, watch)


async def _create(request: web.Request, store: Store, target: Target) -> web.StreamResponse:
    resource = target.resource
    body = _place(await read_object(request, resource), target)
    metadata = body["metadata"]
    if not metadata.get("name") and metadata.get("generateName"):
        suffix = "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
        metadata["name"] = f"{metadata['generateName']}{suffix}"
    if not metadata.get("name"):
        raise invalid(
            resource.qualified_kind,
            resource.group,
            resource.kind,
            "",
            field="metadata.name",
            cause="FieldValueRequired",
            why="Required value: name or generateName is required",
        )
    if metadata.get("resourceVersion"):
        message = "resourceVersion should not be set on objects to be created"
        raise StatusError(500, message, details=None)
    if resource.status_subresource:
        body.pop("status", None)
    return json_response(store.create(resource, body), 201)


async def _update(request: web.Request, store: Store, target: Target) -> web.StreamResponse:
    body = _place(await read_object(request, target.resource), target)
    stored, created = store.update(target.resource, body, subresource=target.subresource)
    return json_response(stored, 201 if created else 200)


async def _patch(request: web.Request, store: Store, target: Target) -> web.StreamResponse:
    resource, name = target.resource, target.name or ""
    content_type = request.content_type
    try:
        patch = orjson.loads(await request.read())
    except orjson.JSONDecodeError as error:
        raise bad_request(f"the body of the request could not be decoded: {error}") from None
    strategic = content_type == _STRATEGIC_PATCH and resource.builtin and not _has_lists(patch)
    if content_type != _MERGE_PATCH and not strategic:
        raise unsupported_media_type(
            f"FakeKubeApi applies only {_MERGE_PATCH} (and {_STRATEGIC_PATCH} without lists, on "
            f"built-in kinds); not {content_type}"
        )
    current = store.get(resource, target.namespace or "", name)
    if current is None:
        raise not_found(resource.qualified, resource.group, resource.plural, name)
    patched = _place(_merge(current, patch), target)
    stored, _ = store.update(resource, patched, subresource=target.subresource)
    return json_response(stored)


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


def _has_lists(value: Any) -> bool:
    if isinstance(value, list):
        return True
    return isinstance(value, dict) and any(_has_lists(item) for item in value.values())


async def _delete(request: web.Request, store: Store, target: Target) -> web.StreamResponse:
    resource, name = target.resource, target.name or ""
    raw = await request.read()
    try:
        options = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as error:
        raise bad_request(f"the body of the request could not be decoded: {error}") from None
    preconditions = (options.get("preconditions") or {}) if isinstance(options, dict) else {}
    gone = store.delete(resource, target.namespace or "", name, preconditions)
    if resource.return_deleted_object:
        return json_response(gone)
    details = {"name": name, "group": resource.group, "kind": resource.plural}
    details = {key: value for key, value in details.items() if value}
    details["uid"] = gone["metadata"]["uid"]
    success = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    return json_response({**success, "details": details})


_VERBS: dict[str, Callable[[web.Request, Store, Target], Awaitable[web.StreamResponse]]] = {
    "get": _get,
    "list": _list,
    "watch": _watch,
    "create": _create,
    "update": _update,
    "patch": _patch,
    "delete": _delete,
}
