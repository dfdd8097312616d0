"""Kubernetes discovery: the InferencePool, its pods, and the objects that refer to the pool.

What is watched, each with one `igw.common.kube.Informer` (list+watch in its own thread; every
callback is moved onto the event loop with `on_loop`, so the datastore and the stores are only
ever touched there):

* the InferencePool named `--pool-name` in the pool namespace (`metadata.name` field selector,
  and the name checked here too), in `--pool-group`'s version (`v1`, or `v1alpha2` for
  `inference.networking.x-k8s.io`); in standalone mode (`--endpoint-selector`) there is no
  pool object, the pool is fixed by the flags;
* the Pods of the pool namespace. In pool mode all of them (the selector may change with the
  pool, and `PoolState` judges every pod against the current one); in standalone mode the
  selector is sent to the server, and applied here again regardless;
* InferenceObjectives and InferenceModelRewrites of the pool namespace, into the stores the
  request path reads, when their CRDs are served (asked once at start through API discovery, as
  upstream does) and not in standalone mode.

Readiness is `PoolState.ready`: the pool seen, its pods listed, its protocol spoken. Watch
failures (410 Gone, a dropped connection, an API server that restarts or answers 5xx) are the
informers' business: they relist with backoff while the datastore keeps the last endpoints.

Lifecycle: `start()` (on the loop) makes the API client unless one was given, asks discovery in
a worker thread, and starts the informers; `stop()` stops them in a worker thread (joining
threads blocks) and closes a client it made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import kubernetes
import structlog

from igw.common.kube import PODS, Informer, Kind, Timings, custom_kind, load_kube_client, on_loop
from igw.epp.discovery.options import PoolOptions
from igw.epp.discovery.pool import LEGACY_POOL_GROUP
from igw.epp.discovery.pool_state import PoolState
from igw.epp.discovery.static import Reconciler

__all__ = ["OBJECTIVE_KINDS", "KubernetesDiscovery", "ObjectStore"]

_log = structlog.get_logger(__name__)
_OBJECTIVES_GROUP, _OBJECTIVES_VERSION = "inference.networking.x-k8s.io", "v1alpha2"
OBJECTIVE_KINDS = {
    "inferenceobjectives": custom_kind(
        _OBJECTIVES_GROUP, _OBJECTIVES_VERSION, "inferenceobjectives"
    ),
    "inferencemodelrewrites": custom_kind(
        _OBJECTIVES_GROUP, _OBJECTIVES_VERSION, "inferencemodelrewrites"
    ),
}

ObjectStore = Callable[[str, dict[str, Any] | None], object]
"""A store's `reconcile(key, obj | None)`."""


def pool_kind(group: str) -> Kind:
    version = "v1alpha2" if group == LEGACY_POOL_GROUP else "v1"
    return custom_kind(group, version, "inferencepools")


class KubernetesDiscovery:
    """Keeps a datastore, and the objective and rewrite stores, in step with the cluster."""

    def __init__(
        self,
        options: PoolOptions,
        target: Reconciler,
        *,
        stores: dict[str, ObjectStore] | None = None,
        api_client: kubernetes.client.ApiClient | None = None,
        timings: Timings | None = None,
    ) -> None:
        self.options = options
        self.state = PoolState(
            target, standalone=options.standalone, metrics_port=options.metrics_port
        )
        self._stores = dict(stores or {})
        """Plural (`inferenceobjectives`, `inferencemodelrewrites`) -> the store it feeds."""
        self._api_client = api_client
        self._owns_client = api_client is None
        self._timings = timings
        self._informers: list[Informer] = []

    @property
    def ready(self) -> bool:
        return self.state.ready

    async def start(self) -> None:
        """Starts the watches; raises `KubeClientConfigError` when no cluster can be reached."""
        loop = asyncio.get_running_loop()
        if self._api_client is None:
            self._api_client = await asyncio.to_thread(load_kube_client)
        client = self._api_client
        served = await asyncio.to_thread(self._served_plurals, client)
        self._informers = self._make_informers(client, loop, served)
        for informer in self._informers:
            informer.start()
        _log.info(
            "epp.discovery.kubernetes_started", pool=self.options.name,
            namespace=self.options.namespace, standalone=self.options.selector is not None,
            watches=[informer.name for informer in self._informers],
        )  # fmt: skip

    def _make_informers(
        self,
        client: kubernetes.client.ApiClient,
        loop: asyncio.AbstractEventLoop,
        served: set[str],
    ) -> list[Informer]:
        options, state = self.options, self.state

        def informer(kind: Kind, on_change: ObjectStore, name: str, **more: Any) -> Informer:
            return Informer(
                client, kind, on_loop(loop, on_change), namespace=options.namespace,
                timings=self._timings, name=name, **more,
            )  # fmt: skip

        pods = informer(
            PODS, state.reconcile_pod, f"pods/{options.namespace}",
            on_synced=on_loop(loop, state.pods_listed), label_selector=_selector(options),
        )  # fmt: skip
        if options.selector is not None:
            return [pods]
        pool = informer(
            pool_kind(options.group), _pool_callback(state), f"pool/{options.name}",
            field_selector=f"metadata.name={options.name}",
            accept=lambda obj: _name(obj) == options.name,
        )  # fmt: skip
        objects = [
            informer(OBJECTIVE_KINDS[plural], store, plural)
            for plural, store in self._stores.items()
            if plural in served
        ]
        return [pool, pods, *objects]

    def _served_plurals(self, client: kubernetes.client.ApiClient) -> set[str]:
        """Which of the objective kinds the API server serves (their CRDs may be absent)."""
        if self.options.selector is not None or not self._stores:
            return set()
        api = kubernetes.client.CustomObjectsApi(client)
        try:
            found = api.get_api_resources(_OBJECTIVES_GROUP, _OBJECTIVES_VERSION)
        except kubernetes.client.ApiException as e:
            _log.info("epp.discovery.no_objective_crds", status=e.status)
            return set()
        return {resource.name for resource in found.resources or ()} & set(OBJECTIVE_KINDS)

    async def stop(self) -> None:
        informers, self._informers = self._informers, []
        if informers:
            await asyncio.to_thread(_stop_all, informers)
        if self._owns_client and self._api_client is not None:
            client, self._api_client = self._api_client, None
            await asyncio.to_thread(client.close)


def _stop_all(informers: list[Informer]) -> None:
    for informer in informers:
        informer.stop()


def _pool_callback(state: PoolState) -> Callable[[str, dict[str, Any] | None], None]:
    def reconcile(_key: str, obj: dict[str, Any] | None) -> None:
        state.reconcile_pool(obj)

    return reconcile


def _selector(options: PoolOptions) -> str | None:
    if options.selector is None:
        return None
    return ",".join(f"{key}={value}" for key, value in options.selector.items())


def _name(obj: dict[str, Any]) -> str | None:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else None
