"""The pool and its pods as one level-triggered state: every change recomputes the endpoints.

`PoolState` is fed by the Kubernetes watches (on the event loop: it is not thread-safe) with
`reconcile_pool(obj | None)` and `reconcile_pod(key, obj | None)`, and after each full list with
`pods_listed()`. Whatever the order of events, replays or a relist, the target datastore is given
the complete endpoint list every pod currently earns (`Reconciler.reconcile`), so it always
matches the world as last seen; a selector or target-port change needs no resync of its own,
because every known pod is kept (matching or not) and re-judged.

Readiness (`ready`): the pool is known (or fixed, in standalone mode), its pods have been listed
once, and its `appProtocol` is one the parsers speak. A deleted pool clears the datastore and
turns readiness off; re-creating it recovers on its next event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from igw.epp.discovery.pool import SUPPORTED_PROTOCOLS, PoolSpec, pod_endpoints, pool_from_object
from igw.epp.discovery.static import Reconciler
from igw.epp.endpoints import Endpoint

__all__ = ["PoolState"]

_log = structlog.get_logger(__name__)


class PoolState:
    """One pool's endpoints, kept in step with the pool object and its pods."""

    def __init__(
        self,
        target: Reconciler,
        *,
        standalone: PoolSpec | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self._target = target
        self._pool = standalone
        self._standalone = standalone is not None
        self._metrics_port = metrics_port
        self._pods: dict[str, Mapping[str, Any]] = {}
        self._pods_listed = False
        self._published: tuple[Endpoint, ...] = ()

    @property
    def pool(self) -> PoolSpec | None:
        return self._pool

    @property
    def ready(self) -> bool:
        pool = self._pool
        return pool is not None and self._pods_listed and pool.app_protocol in SUPPORTED_PROTOCOLS

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """What was last given to the datastore."""
        return self._published

    def reconcile_pool(self, obj: Mapping[str, Any] | None) -> None:
        """The pool object now (None: gone); ignored in standalone mode."""
        if self._standalone:
            return
        pool = pool_from_object(obj) if obj is not None else None
        if obj is not None and pool is None:
            _log.warning("epp.discovery.pool_unreadable", object=_name_of(obj))
        if pool != self._pool:
            _log.info(
                "epp.discovery.pool", present=pool is not None,
                selector=dict(pool.selector) if pool else None,
                target_ports=list(pool.target_ports) if pool else None,
            )  # fmt: skip
        self._pool = pool
        self._publish()

    def reconcile_pod(self, key: str, obj: Mapping[str, Any] | None) -> None:
        """One pod now (None: gone)."""
        if obj is None:
            self._pods.pop(key, None)
        else:
            self._pods[key] = obj
        self._publish()

    def pods_listed(self) -> None:
        """A full list of the pods was applied (the first one makes the pool ready)."""
        self._pods_listed = True
        self._publish()

    def _publish(self) -> None:
        pool = self._pool
        if pool is None:
            endpoints: tuple[Endpoint, ...] = ()
        else:
            endpoints = tuple(
                endpoint
                for key in sorted(self._pods)
                for endpoint in pod_endpoints(
                    self._pods[key], pool, metrics_port=self._metrics_port
                )
            )
        if endpoints != self._published:
            self._published = endpoints
            self._target.reconcile(endpoints)


def _name_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "?")) if isinstance(meta, Mapping) else "?"
