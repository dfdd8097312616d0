"""List+watch one kind of Kubernetes object and hand every change to a level-triggered callback.

Contract: `on_change(key, obj)` gets `key` = "namespace/name" ("name" when cluster-scoped) and
`obj` = the object as the API server sent it (a JSON dict; list items get the `apiVersion` and
`kind` their list carried), or `None` when it is gone. `on_synced()` follows each successful
(re)list once all of it has been handed over; the first one means "synced". Objects failing the
caller's `accept(obj)` count as absent, whatever selector the server was asked to apply. A change
may be repeated (every relist replays everything), so a consumer makes its state match the object
rather than counting events. The informer never touches an object again after handing it over.

Loop: list (hand over every object, then `None` for every key handed over before and absent now),
then watch from the list's resourceVersion. An idle read timeout (`stop_poll_s`) resumes the
watch where it was; the server ending the watch (its `timeoutSeconds`) relists at once. Any error
(410 Gone, 5xx, connection refused or dropped, a callback raising) relists after a jittered
exponential backoff (`Backoff`) that a working watch resets. Until a relist succeeds nothing is
removed: the consumer keeps the last known state through an outage.

Thread ownership: the official client blocks, so `start()` runs the loop in one daemon thread
that owns the watch state (resourceVersion, the keys handed over) and calls the callbacks. A
consumer whose state lives on an asyncio loop wraps its callbacks with `on_loop(loop, callback)`;
they then run on that loop, in order.

Shutdown: `stop()` sets a stop flag, shuts the socket of the open watch (a blocked read ends at
once) and joins the thread. Were the shutdown to miss (a request still being sent), the read
timeout bounds how long the thread takes to notice. The `ApiClient` belongs to the caller, who
closes it after `stop()`. (`kubernetes.informer.SharedInformer` has a fixed retry delay, typed
objects, no client-side filter and a `stop()` that can hang, hence this module.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVarTuple

import kubernetes
import structlog
import urllib3

from igw.common.kube import _watch
from igw.common.kube._backoff import Backoff
from igw.common.kube._kind import Kind

__all__ = ["Accept", "Informer", "OnChange", "OnSynced", "Timings", "on_loop"]

OnChange = Callable[[str, dict[str, Any] | None], object]
OnSynced = Callable[[], object]
Accept = Callable[[dict[str, Any]], bool]
Ts = TypeVarTuple("Ts")

_HTTP_GONE = 410


@dataclass(frozen=True, slots=True)
class Timings:
    """How long an informer waits for the API server, and between retries."""

    stop_poll_s: float = 1.0  # watch read timeout: resume an idle watch, look at the stop flag
    watch_timeout_s: int = 300  # the server ends each watch after this; then relist
    connect_timeout_s: float = 5.0
    list_timeout_s: float = 30.0
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 30.0


def on_loop(
    loop: asyncio.AbstractEventLoop, callback: Callable[[*Ts], object]
) -> Callable[[*Ts], None]:
    """`callback` made callable from the informer thread: each call runs later on `loop`, in order.

    An exception in `callback` goes to the loop's exception handler, not to the informer. Stop
    the informer before closing the loop: a call after that fails in the informer (and is retried).
    """

    def deliver(*args: *Ts) -> None:
        loop.call_soon_threadsafe(callback, *args)

    return deliver


def _accept_all(_obj: dict[str, Any]) -> bool:
    return True


def _nothing() -> None:
    return None


class Informer:
    """Keeps a consumer in step with the objects of one kind (see the module docstring)."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        kind: Kind,
        on_change: OnChange,
        *,
        on_synced: OnSynced = _nothing,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        accept: Accept = _accept_all,
        timings: Timings | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or kind.name  # in logs and the thread's name
        self._timings = timings or Timings()
        self._backoff = Backoff(self._timings.backoff_initial_s, self._timings.backoff_max_s)
        self._query = _watch.Query(
            kind.list_call(api_client, namespace),
            label_selector,
            field_selector,
            self._timings.connect_timeout_s,
        )
        self._on_change = on_change
        self._on_synced = on_synced
        self._accept = accept
        # A lazy logger: it follows the logging configuration in force at each call.
        self._log = structlog.get_logger(__name__, informer=self.name, namespace=namespace or "*")
        self._stopping = threading.Event()
        self._synced = threading.Event()
        self._lock = threading.Lock()  # guards _response against a concurrent stop()
        self._response: Any = None  # the open watch, for stop() to shut
        self._thread: threading.Thread | None = None
        self._known: set[str] = set()  # keys handed over and not yet taken back
        self._worked = False  # the current watch delivered events or stayed open

    @property
    def synced(self) -> bool:
        """True once the first list has been handed over (for readiness)."""
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        """Block until the first list has been handed over; False on timeout."""
        return self._synced.wait(timeout)

    def start(self) -> None:
        """Start the list+watch thread; an informer starts at most once."""
        if self._thread is not None:
            raise RuntimeError(f"informer {self.name} already started")
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop the thread; True once it has ended, False if still running after `timeout_s`."""
        self._stopping.set()
        with self._lock:
            if self._response is not None:
                _watch.shut(self._response)
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._log.warning("informer.stop_timeout", timeout_s=timeout_s)
            return False
        return True

    def _run(self) -> None:
        query = self._query
        self._log.info(
            "informer.starting", labels=query.label_selector, fields=query.field_selector
        )
        backoff = self._backoff
        failing = False
        while not self._stopping.is_set():
            self._worked = False
            try:
                version = self._list()
                if failing:
                    self._log.info("informer.recovered", objects=len(self._known))
                    failing = False
                self._watch_from(version)
            except Exception as exc:
                if self._stopping.is_set():
                    break
                if self._worked:
                    backoff.reset()
                failing = True
                self._wait_after(exc, backoff.next_delay())
                continue
            if self._worked:
                backoff.reset()
            else:  # a server that ends every watch at once must not make us spin
                self._stopping.wait(backoff.next_delay())
        self._log.info("informer.stopped")

    def _wait_after(self, error: Exception, delay: float) -> None:
        if getattr(error, "status", None) == _HTTP_GONE:
            self._log.info("informer.watch_expired", relist_in_s=round(delay, 3))
        else:
            self._log.warning("informer.error", error=repr(error), retry_in_s=round(delay, 3))
        self._stopping.wait(delay)

    def _list(self) -> str | None:
        objects, version = _watch.list_objects(self._query, self._timings.list_timeout_s)
        present: set[str] = set()
        for obj in objects:
            key = _watch.object_key(obj)
            if key is not None and self._accept(obj):
                present.add(key)
                self._known.add(key)  # before the call: a raising consumer may hold it already
                self._on_change(key, obj)
        for key in sorted(self._known - present):
            self._on_change(key, None)
            self._known.discard(key)
        self._on_synced()
        if not self._synced.is_set():
            self._synced.set()
            self._log.info("informer.synced", objects=len(present))
        else:
            self._log.debug("informer.relisted", objects=len(present))
        return version

    def _watch_from(self, version: str | None) -> None:
        """Watch until the server ends the stream; idle read timeouts resume from `version`."""
        timings = self._timings
        while not self._stopping.is_set():
            response = _watch.open_watch(
                self._query, version, timings.watch_timeout_s, timings.stop_poll_s
            )
            with self._lock:
                self._response = response
            try:
                if self._stopping.is_set():
                    return  # stop() may have come before _response was set
                for event in _watch.events(response):
                    self._worked = True
                    version = self._on_event(event) or version
                    if self._stopping.is_set():
                        return
            except urllib3.exceptions.ReadTimeoutError:
                self._worked = True
                continue  # idle: look at the stop flag, then resume where we were
            finally:
                with self._lock:
                    self._response = None
                _watch.close(response)
            return  # the server ended the watch: relist

    def _on_event(self, event: dict[str, Any]) -> str | None:
        obj: dict[str, Any] = event["object"]
        if event.get("type") == "BOOKMARK":
            return _watch.resource_version(obj)
        key = _watch.object_key(obj)
        if key is None:
            return _watch.resource_version(obj)
        if event.get("type") != "DELETED" and self._accept(obj):
            self._log.debug("informer.changed", type=event.get("type"), key=key)
            self._known.add(key)
            self._on_change(key, obj)
        elif key in self._known:  # deleted, or no longer accepted: take it back
            self._log.debug("informer.gone", type=event.get("type"), key=key)
            self._on_change(key, None)
            self._known.discard(key)
        return _watch.resource_version(obj)
