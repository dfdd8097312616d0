"""The in-cluster adapter source: list+watch bbr-managed ConfigMaps into an `AdapterIndex`.

ConfigMaps labelled `inference.networking.k8s.io/bbr-managed: "true"` (in one namespace, or in all)
are followed by an `igw.common.kube.Informer`; every change becomes
`AdapterIndex.reconcile("ns/name", data | None)`. The label is also checked client-side: a
ConfigMap that loses the label is treated as deleted, and an API server that ignores label
selectors (KMock does) cannot leak unmanaged ConfigMaps in.

Thread ownership: the informer's daemon thread calls `reconcile` directly; the index is
thread-safe. Lifecycle and shutdown are the informer's: `start()`, `stop()` (shuts the open watch
and joins the thread); the `ApiClient` belongs to the caller, who closes it after `stop()`.
"""

from __future__ import annotations

from typing import Any

import kubernetes

from igw.bbr.adapters import BBR_MANAGED_LABEL, AdapterIndex
from igw.common.kube import CONFIG_MAPS, Informer, Timings

__all__ = ["LABEL_SELECTOR", "ConfigMapSource"]

LABEL_SELECTOR = f"{BBR_MANAGED_LABEL}=true"


def _managed(config_map: dict[str, Any]) -> bool:
    labels = (config_map.get("metadata") or {}).get("labels") or {}
    return isinstance(labels, dict) and labels.get(BBR_MANAGED_LABEL) == "true"


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
        self._informer = Informer(
            api_client,
            CONFIG_MAPS,
            self._on_change,
            namespace=namespace,
            label_selector=LABEL_SELECTOR,
            accept=_managed,
            timings=Timings(
                stop_poll_s=stop_poll_s,
                watch_timeout_s=watch_timeout_s,
                connect_timeout_s=connect_timeout_s,
                list_timeout_s=list_timeout_s,
                backoff_initial_s=backoff_initial_s,
                backoff_max_s=backoff_max_s,
            ),
            name="bbr-configmaps",
        )

    @property
    def synced(self) -> bool:
        """True once the first list has been applied to the index (for readiness)."""
        return self._informer.synced

    def wait_synced(self, timeout: float) -> bool:
        """Block until the first list has been applied; False on timeout."""
        return self._informer.wait_synced(timeout)

    def start(self) -> None:
        """Start the list+watch thread; a source starts at most once."""
        self._informer.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop the thread; True once it has ended, False if still running after `timeout_s`."""
        return self._informer.stop(timeout_s)

    def _on_change(self, key: str, config_map: dict[str, Any] | None) -> None:
        if config_map is None:
            self._index.reconcile(key, None)
            return
        data = config_map.get("data")
        self._index.reconcile(key, data if isinstance(data, dict) else {})
