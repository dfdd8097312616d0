"""A fake kube-apiserver speaking the real wire protocol over loopback HTTP.

No kube-apiserver can run on igw's test machines, and KMock differs from one where it matters
(a constant resourceVersion, lists without `kind`, no `410 Gone`). `FakeKubeApi` serves what
igw's controllers use, as kube-apiserver does, so tests can drive the official `kubernetes`
client (or any other) against it: nothing in igw may lean on a quirk of this fake.

Served, as kube-apiserver serves it:
- discovery: `/version`, `/api`, `/apis`, `/apis/{group}`, `/api/v1`, `/apis/{group}/{version}`
  (legacy documents, not the aggregated `apidiscovery.k8s.io` ones);
- GET, LIST (label and field selectors, `resourceVersion` with `resourceVersionMatch`), WATCH,
  POST, PUT (optimistic concurrency), merge PATCH and DELETE on the kinds of a `ResourceType`
  table (`DEFAULT_RESOURCES`: Pods, ConfigMaps, Leases, both InferencePool versions,
  InferenceObjectives, InferenceModelRewrites), each with the registry behaviour of its kind;
- one global resourceVersion counter and an event history, so watches resume exactly, and
  `compact()` makes resuming from before it a 410 Expired (`_kube_store`, `_kube_watch`);
- TokenReview and SubjectAccessReview answered from `tokens` and `allowed` (`_kube_reviews`);
- errors as `Status` objects with the real reasons and messages (`_kube_status`).

Not served: authentication and authorization of the callers themselves, validation, defaulting,
admission, finalizers and graceful deletion, managedFields, server-side apply, JSON patch,
pagination, protobuf, TLS, conversion between versions (each group/version is its own store),
and namespaces as objects (any namespace exists). `_kube_rest` lists the finer differences.

For tests: `api_client()` writes a kubeconfig for this server and loads it, as a service would,
into an official-client `ApiClient`; `status_reason()` reads the Status reason of an `ApiException`.

Lifecycle: the server runs on the caller's event loop from `start()` to `stop()`. The store lives
as long as the object, so `restart()` (drop every TCP connection mid-stream, listen again on the
same port) keeps objects, history and the counter, as an apiserver restart in front of the same
etcd does. `put`, `delete`, `get`, `compact` and `end_watches` are plain calls, safe from the loop
or from a test thread; the attributes `tokens`, `allowed` and `requests` belong to the loop.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import kubernetes
import orjson
import yaml
from aiohttp import web

from igw.common.testing._kube_resources import (
    DEFAULT_RESOURCES,
    ResourceTable,
    ResourceType,
    custom_resource,
    discovery,
)
from igw.common.testing._kube_rest import json_response, read_object, resolve, serve
from igw.common.testing._kube_reviews import subject_access_review, token_review
from igw.common.testing._kube_status import StatusError, method_not_allowed
from igw.common.testing._kube_store import Store
from igw.common.testing.http_server import LoopbackServer

__all__ = [
    "DEFAULT_RESOURCES",
    "FakeKubeApi",
    "ResourceType",
    "custom_resource",
    "status_reason",
]

_INJECTED = {
    503: "the server is currently unable to handle the request",
    500: "Internal error occurred: injected by FakeKubeApi.fail_next",
    429: "Too many requests, please try again later.",
    504: "Timeout: request did not complete within the allotted timeout",
}


class FakeKubeApi(LoopbackServer):
    """kube-apiserver on `host:port` (`port=0` picks one, readable after `start()`)."""

    kind = "fake kube-apiserver"
    handler_cancellation: ClassVar[bool] = True
    """A watch whose client went away stops at once and unsubscribes."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        resources: Iterable[ResourceType] = DEFAULT_RESOURCES,
    ) -> None:
        super().__init__("kube-apiserver", host=host, port=port)
        self.table = ResourceTable(resources)
        self.tokens: dict[str, str] = {}
        """Bearer token -> username, for TokenReview; other tokens are not authenticated."""
        self.allowed: set[tuple[str, str, str]] = set()
        """(username, verb, path) a SubjectAccessReview of nonResourceAttributes allows."""
        self.requests: list[tuple[str, str, str]] = []
        """(method, path, query string) of every request, in arrival order."""
        self._store = Store()
        self._failures: list[int] = []
        self._in_flight: set[asyncio.Transport] = set()

    async def stop(self) -> None:
        """Close every connection at once (open watches end without a clean end) and stop."""
        self._drop_connections()
        await super().stop()

    async def restart(self) -> None:
        """Drop every connection mid-stream, then listen again on the same port."""
        await self.stop()
        await self.start()

    def end_watches(self) -> None:
        """End open watches cleanly, as their `timeoutSeconds` would (with a BOOKMARK if asked)."""
        self._store.end_watches()

    def kubeconfig(
        self, path: Path, *, token: str | None = None, namespace: str = "default"
    ) -> Path:
        """Write a kubeconfig whose current context reaches this server; returns `path`."""
        user = {"token": token} if token is not None else {}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": user}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": "fake",
            "preferences": {},
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def api_client(
        self, path: Path, *, token: str | None = None, namespace: str = "default"
    ) -> kubernetes.client.ApiClient:
        """An official-client `ApiClient` loaded from `kubeconfig(path, ...)`; the caller closes it.

        Going through the written kubeconfig, not just the URL, proves that file works too.
        """
        configuration = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]  # untyped client API
            config_file=str(self.kubeconfig(path, token=token, namespace=namespace)),
            client_configuration=configuration,
        )
        return kubernetes.client.ApiClient(configuration)

    def put(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace `obj` as if written through the API; returns the stored copy.

        The object gets the next resourceVersion; a new one gets a uid and creationTimestamp
        unless it names its own, a replaced one keeps the stored ones. Watches see ADDED or
        MODIFIED; rewriting identical content is a no-op (no new version, no event). A namespaced
        kind without `metadata.namespace` lands in "default".
        """
        resource = self.table.of(str(obj.get("apiVersion")), str(obj.get("kind")))
        body = copy.deepcopy(dict(obj))
        metadata = body.setdefault("metadata", {})
        if not metadata.get("name"):
            raise ValueError(f"{resource.kind} needs metadata.name")
        if resource.namespaced:
            metadata.setdefault("namespace", "default")
        return self._store.write(resource, body, keep_identity=True)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        """Delete at once (a new resourceVersion, DELETED to watches); KeyError when missing."""
        resource = self.table.of(api_version, kind)
        try:
            self._store.delete(resource, self._namespace(resource, namespace), name, {})
        except StatusError as error:
            raise KeyError(error.message) from None

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        resource = self.table.of(api_version, kind)
        return self._store.get(resource, self._namespace(resource, namespace), name)

    def compact(self) -> None:
        """Forget the event history: resuming a watch from before now answers 410 Expired."""
        self._store.compact()

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` requests, whatever they are, with `status` and a Status body."""
        self._failures.extend([status] * count)

    @property
    def resource_version(self) -> str:
        """The current global resourceVersion, as a LIST would report it."""
        return str(self._store.version)

    @staticmethod
    def _namespace(resource: ResourceType, namespace: str | None) -> str:
        return (namespace or "default") if resource.namespaced else ""

    def _drop_connections(self) -> None:
        for transport in list(self._in_flight):
            transport.abort()
        self._in_flight.clear()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.method, request.path, request.query_string))
        transport = request.transport
        if transport is not None:
            self._in_flight.add(transport)
        try:
            if self._failures:
                code = self._failures.pop(0)
                message = _INJECTED.get(code, f"injected by FakeKubeApi.fail_next ({code})")
                return json_response(StatusError(code, message, details=None).status(), code)
            return await self._route(request)
        except StatusError as error:
            return json_response(error.status(), error.code)
        finally:
            if transport is not None:
                self._in_flight.discard(transport)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            address = f"{self.host}:{self.port}"
            document = discovery(self.table, request.path, address)
            if document is not None:
                return json_response(document)
        target = resolve(self.table, request.path)
        if target.resource.stored:
            return await serve(request, self._store, target)
        if request.method != "POST" or target.name is not None:
            raise method_not_allowed()
        review = await read_object(request, target.resource)
        if target.resource.kind == "TokenReview":
            return json_response(token_review(review, self.tokens), 201)
        if target.resource.kind == "SubjectAccessReview":
            return json_response(subject_access_review(review, self.allowed), 201)
        raise method_not_allowed()


def status_reason(error: kubernetes.client.ApiException) -> str:
    """The `reason` of the Status body a failed official-client call got, like "Conflict"."""
    reason: str = orjson.loads(error.body or "{}")["reason"]
    return reason
