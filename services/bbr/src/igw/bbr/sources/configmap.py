"""The in-cluster adapter source: list+watch bbr-managed ConfigMaps into an `AdapterIndex`.

ConfigMaps labelled `inference.networking.k8s.io/bbr-managed: "true"` (in one namespace, or in all)
are listed, then watched; every object is handed to `AdapterIndex.reconcile("ns/name", data)`.
The label is also checked client-side: a ConfigMap that loses the label is treated as deleted, and
an API server that ignores label selectors (KMock does) cannot leak unmanaged ConfigMaps in.

Thread ownership: the official client is blocking, so `start()` runs the list+watch loop in one
dedicated daemon thread that owns the watch state (the last resourceVersion and the set of keys
it has fed into the index). The index is the only shared object and is thread-safe.

Loop: list (after a successful list, keys no longer present are removed: a relist heals missed
events; the first success sets `synced`), then watch from the list's resourceVersion. The watch
request uses a short read timeout (`stop_poll_s`); an idle timeout just resumes the watch from the
last resourceVersion. When the server ends the watch (its `timeoutSeconds`) the loop relists at
once; an error (410 Gone included) relists after an exponential backoff, reset by a watch that
delivered events, so a persistent failure cannot spin.

Shutdown: `stop()` sets a stop flag, shuts down the open watch socket (the client's
`Watch.stop()`), and joins the thread. Were the shutdown to miss (a request still being sent), the
read timeout bounds how long the thread takes to notice the flag. The `ApiClient` belongs to the
caller, who closes it after `stop()`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import structlog
import urllib3

from igw.bbr.adapters import BBR_MANAGED_LABEL, AdapterIndex

__all__ = [
    "LABEL_SELECTOR",
    "ConfigMapSource",
    "KubeClientConfigError",
    "load_kube_client",
    "namespace_from_env",
]

LABEL_SELECTOR = f"{BBR_MANAGED_LABEL}=true"
_HTTP_GONE = 410

_log = structlog.get_logger(__name__)


class KubeClientConfigError(RuntimeError):
    """Neither an in-cluster service account nor a kubeconfig is available."""


def load_kube_client() -> kubernetes.client.ApiClient:
    """An `ApiClient` from the in-cluster service account, else from the kubeconfig.

    The kubeconfig is `$KUBECONFIG` (read now, not when the client library was imported), else
    `~/.kube/config`. Raises `KubeClientConfigError` when neither source works.
    """
    configuration = kubernetes.client.Configuration()
    try:
        kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # untyped client API
    except kubernetes.config.ConfigException as in_cluster:
        kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
        try:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]  # untyped client API
                config_file=kubeconfig, client_configuration=configuration
            )
        except (kubernetes.config.ConfigException, OSError) as error:
            raise KubeClientConfigError(
                "cannot reach the Kubernetes API: not running in a cluster "
                f"({in_cluster}) and no usable kubeconfig at {kubeconfig} ({error}); "
                "set KUBECONFIG, or use a local adapter file instead"
            ) from error
    return kubernetes.client.ApiClient(configuration)


def namespace_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """The namespace to watch from env `NAMESPACE`; `None` (all namespaces) when unset or empty."""
    return environ.get("NAMESPACE") or None


@dataclass(frozen=True, slots=True)
class _ConfigMap:
    """The typed slice of a ConfigMap this source needs; built at the untyped client boundary."""

    key: str
    managed: bool
    data: Mapping[str, object]
    resource_version: str | None


def _as_config_map(raw: Any) -> _ConfigMap | None:
    if not isinstance(raw, dict):
        return None
    meta = raw.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return None
    labels = meta.get("labels") or {}
    data = raw.get("data") or {}
    version = meta.get("resourceVersion")
    return _ConfigMap(
        key=f"{meta.get('namespace') or ''}/{meta['name']}",
        managed=isinstance(labels, dict) and labels.get(BBR_MANAGED_LABEL) == "true",
        data=data if isinstance(data, dict) else {},
        resource_version=version if isinstance(version, str) else None,
    )


class ConfigMapSource:
    """Keeps an `AdapterIndex` in step with the bbr-managed ConfigMaps of a cluster."""

    def __init__(
        self,
        index: AdapterIndex,
        api_client: kubernetes.client.ApiClient,
        namespace: str | None,
        *,
        stop_poll_s: float = 1.0,
        watch_timeout_s: int = 300,
        connect_timeout_s: float = 5.0,
        list_timeout_s: float = 30.0,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 30.0,
    ) -> None:
        self._index = index
        self._api = kubernetes.client.CoreV1Api(api_client)
        self._api_client = api_client
        self._namespace = namespace
        self._stop_poll_s = stop_poll_s
        self._watch_timeout_s = watch_timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._list_timeout_s = list_timeout_s
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._lock = threading.Lock()  # guards _watch against a concurrent stop()
        self._watch: Any = None
        self._thread: threading.Thread | None = None
        self._known: set[str] = set()  # keys this source has fed into the index
        self._watched = False  # an event arrived since the last list: the watch worked

    @property
    def synced(self) -> bool:
        """True once the first list has been applied to the index (for readiness)."""
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        """Block until the first list has been applied; False on timeout."""
        return self._synced.wait(timeout)

    def start(self) -> None:
        """Start the list+watch thread; a source starts at most once."""
        if self._thread is not None:
            raise RuntimeError("ConfigMapSource already started")
        self._thread = threading.Thread(target=self._run, name="bbr-configmap-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and wait up to `timeout_s` for it to end."""
        self._stopping.set()
        with self._lock:
            if self._watch is not None:
                self._watch.stop()  # shuts the socket down: unblocks a pending read at once
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                _log.warning("bbr.configmaps.stop_timeout", timeout_s=timeout_s)

    def _run(self) -> None:
        _log.info("bbr.configmaps.starting", namespace=self._namespace or "*")
        failures = 0  # consecutive failures without a working watch in between
        while not self._stopping.is_set():
            self._watched = False
            try:
                self._watch_from(self._list())
                failures = 0
            except Exception as exc:
                if self._stopping.is_set():
                    break
                failures = 0 if self._watched else failures
                delay = min(self._backoff[1], self._backoff[0] * 2**failures)
                failures += 1
                if getattr(exc, "status", None) == _HTTP_GONE:
                    _log.info("bbr.configmaps.watch_expired", relist_in_s=delay)
                else:
                    _log.warning("bbr.configmaps.error", error=repr(exc), retry_in_s=delay)
                self._stopping.wait(delay)
        _log.info("bbr.configmaps.stopped")

    def _list_function(self) -> tuple[Any, tuple[str, ...]]:
        if self._namespace is None:
            return self._api.list_config_map_for_all_namespaces, ()
        return self._api.list_namespaced_config_map, (self._namespace,)

    def _list(self) -> str | None:
        function, args = self._list_function()
        listed = function(
            *args,
            label_selector=LABEL_SELECTOR,
            _request_timeout=(self._connect_timeout_s, self._list_timeout_s),
        )
        present: set[str] = set()
        for item in listed.items or ():
            raw = self._api_client.sanitize_for_serialization(item)  # type: ignore[no-untyped-call]  # untyped client API
            config_map = _as_config_map(raw)
            if config_map is not None and config_map.managed:
                present.add(config_map.key)
                self._index.reconcile(config_map.key, config_map.data)
        for key in self._known - present:
            self._index.reconcile(key, None)
        self._known = present
        if not self._synced.is_set():
            self._synced.set()
            _log.info("bbr.configmaps.synced", count=len(present))
        version = listed.metadata.resource_version if listed.metadata else None
        return version if isinstance(version, str) else None

    def _watch_from(self, version: str | None) -> None:
        """Watch until the server ends the stream; idle read timeouts resume from `version`."""
        function, args = self._list_function()
        while not self._stopping.is_set():
            watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]  # untyped client API
            with self._lock:
                if self._stopping.is_set():
                    return
                self._watch = watch
            try:
                for event in watch.stream(  # type: ignore[no-untyped-call]  # untyped client API
                    function,
                    *args,
                    label_selector=LABEL_SELECTOR,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=self._watch_timeout_s,
                    _request_timeout=(self._connect_timeout_s, self._stop_poll_s),
                ):
                    version = self._on_event(event) or version
                    if self._stopping.is_set():
                        return
            except urllib3.exceptions.ReadTimeoutError:
                continue  # idle: look at the stop flag, then resume where we were
            finally:
                with self._lock:
                    self._watch = None
            return  # the server closed the watch: relist

    def _on_event(self, event: Any) -> str | None:
        self._watched = True
        kind = event.get("type")
        config_map = _as_config_map(event.get("raw_object"))
        if config_map is None:
            return None
        if kind == "BOOKMARK":
            return config_map.resource_version
        _log.debug("bbr.configmaps.event", type=kind, key=config_map.key)
        if kind == "DELETED" or not config_map.managed:
            self._known.discard(config_map.key)
            self._index.reconcile(config_map.key, None)
        else:
            self._known.add(config_map.key)
            self._index.reconcile(config_map.key, config_map.data)
        return config_map.resource_version
