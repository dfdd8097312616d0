"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `tools/leaderelection` does.

Algorithm (client-go v0.35 `LeaderElector`, its `LeaseLock`, controller-runtime's defaults):

* One attempt (`tryAcquireOrRenew`): a leader whose lease is still valid first writes its renewal
  with the Lease it last saw (optimistic concurrency on `metadata.resourceVersion`: a 409 Conflict
  means someone else wrote, and the attempt falls back to reading). Otherwise it reads the Lease:
  absent, it creates it; held by another and still valid, the attempt fails; else (free, expired,
  or ours) it writes itself in as holder, counting `leaseTransitions` up when the holder changes
  and keeping `acquireTime` when it does not. `acquireTime` and `renewTime` are MicroTime strings.
* Expiry is judged as client-go judges it, by the *local* time this replica last saw the record
  change plus the record's `leaseDurationSeconds`, not by `renewTime`: the replicas' clocks need
  not agree, and a replica that starts next to a stale Lease waits a full lease duration.
* Acquiring: an attempt every `retry_period_s * (1 + 1.2 * random())` until one succeeds.
  Leading: a renewal round every `retry_period_s`; a round retries every `retry_period_s` and
  leadership is lost when it has not succeeded within `renew_deadline_s`. Since
  `lease_duration_s > renew_deadline_s`, the old leader has let go before anyone else may take
  over. Each request is bounded by `max(1 s, renew_deadline_s / 2)` and by the round's deadline.
* Release (client-go's `ReleaseOnCancel`): on `stop()`, a leader that still holds the Lease
  writes an empty holder and `leaseDurationSeconds: 1`, so the next replica takes over at its next
  attempt instead of after a whole lease duration.

Where igw differs: losing leadership is not fatal (controller-runtime exits the process); the
elector goes back to acquiring. A leader that reads another holder in the Lease steps down at
once rather than at the end of the round. A release only overwrites a Lease still held by us.

Threads: the official client blocks, so `start()` runs the loop in one daemon thread that owns
the Lease state (the last Lease seen, the observed record and when it changed). `is_leader` is
readable from any thread; `on_change(leading)` runs on the elector's thread (wrap it with
`igw.common.kube.on_loop` to run it on an asyncio loop) and is told every change, ending with
`False`. Shutdown: `stop()` makes `is_leader` False at once, wakes the thread, waits for a request
in flight (bounded as above), releases or not, and joins. The `ApiClient` belongs to the caller,
who closes it after `stop()`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import kubernetes
import orjson
import structlog

from igw.common.kube._lease import (
    JITTER_FACTOR,
    Clock,
    LeaseRecord,
    LeaseTimings,
    SystemClock,
    micro_time,
    new_identity,
    timings_fields,
)

__all__ = ["Clock", "LeaderElector", "LeaseRecord", "LeaseTimings", "SystemClock", "micro_time"]


_HTTP_NOT_FOUND, _HTTP_CONFLICT = 404, 409
_LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
_log = structlog.get_logger(__name__)


class LeaderElector:
    """Takes and keeps the Lease `namespace/name` (see the module docstring)."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        name: str,
        namespace: str,
        *,
        identity: str | None = None,
        timings: LeaseTimings | None = None,
        on_change: Callable[[bool], object] | None = None,
        clock: Clock | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.name, self.namespace = name, namespace
        self.identity = identity or new_identity()
        self.timings = timings or LeaseTimings()
        self._client = api_client
        self._on_change = on_change
        self._clock = clock or SystemClock()
        self._rng = rng
        self._log = _log.bind(lease=f"{namespace}/{name}", identity=self.identity)
        self._stopping = threading.Event()
        self._release_on_stop = True
        self._leading = False
        self._thread: threading.Thread | None = None
        self._lease: dict[str, Any] | None = None  # the Lease last read or written
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0  # monotonic time the observed record last changed

    @property
    def is_leader(self) -> bool:
        """True while this replica holds the Lease; False from the moment `stop()` is called."""
        return self._leading and not self._stopping.is_set()

    @property
    def holder(self) -> str | None:
        """The holder in the record last seen ("" once released; None before any was seen)."""
        observed = self._observed
        return None if observed is None else observed.holder

    def start(self) -> None:
        """Start the election thread; an elector starts at most once."""
        if self._thread is not None:
            raise RuntimeError(f"leader elector for {self.namespace}/{self.name} already started")
        self._thread = threading.Thread(target=self._run, name=f"leader-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, *, release: bool = True, timeout_s: float | None = None) -> bool:
        """Stop (releasing the Lease if held, unless `release=False`: as if the process died).

        Returns True once the thread has ended. The first call decides whether to release.
        """
        if not self._stopping.is_set():
            self._release_on_stop = release
            self._stopping.set()
        if self._thread is None:
            return True
        if timeout_s is None:
            timeout_s = self.timings.request_timeout_s + self.timings.renew_deadline_s + 1.0
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self._log.warning("leader.stop_timeout", timeout_s=timeout_s)
            return False
        return True

    def _run(self) -> None:
        self._log.info("leader.electing", **timings_fields(self.timings))
        while self._acquire():
            self._become(leading=True)
            self._renew()
            if self._stopping.is_set():
                if self._release_on_stop:
                    self._release()
                break
            self._become(leading=False)
        self._become(leading=False)
        self._log.info("leader.stopped")

    def _acquire(self) -> bool:
        """Attempt until the Lease is ours (True) or `stop()` (False)."""
        retry_s = self.timings.retry_period_s
        while not self._stopping.is_set():
            if self._try_acquire_or_renew(self._clock.monotonic() + self.timings.renew_deadline_s):
                return True
            if self._stopping.wait(retry_s * (1 + JITTER_FACTOR * self._rng())):
                break
        return False

    def _renew(self) -> None:
        """Renew every retry period; return when a round misses its deadline, when another
        holder is seen, or on `stop()`."""
        timings = self.timings
        while not self._stopping.wait(timings.retry_period_s):
            deadline = self._clock.monotonic() + timings.renew_deadline_s
            while not self._try_acquire_or_renew(deadline):
                remaining = deadline - self._clock.monotonic()
                if self.holder != self.identity:
                    self._log.warning("leader.taken_over", holder=self.holder)
                    return
                if remaining <= 0:
                    self._log.warning("leader.renew_failed", deadline_s=timings.renew_deadline_s)
                    return
                if self._stopping.wait(min(timings.retry_period_s, remaining)):
                    return

    def _become(self, *, leading: bool) -> None:
        if self._leading == leading:
            return
        self._leading = leading
        self._log.info("leader.acquired" if leading else "leader.lost")
        if self._on_change is None:
            return
        try:
            self._on_change(leading)
        except Exception:
            self._log.exception("leader.callback_failed")

    def _try_acquire_or_renew(self, deadline: float) -> bool:
        now = micro_time(self._clock.now())
        wanted = LeaseRecord(self.identity, int(self.timings.lease_duration_s), now, now, 0)
        observed = self._observed
        if observed is not None and observed.holder == self.identity and self._valid():
            # The fast path: renew with the Lease we last wrote; a 409 sends us to read.
            renewal = replace(
                wanted, acquire_time=observed.acquire_time, transitions=observed.transitions
            )
            if self._write(renewal, deadline, quiet=True):
                return True
        try:
            lease = self._read(deadline)
        except Exception as error:
            if getattr(error, "status", None) == _HTTP_NOT_FOUND:
                return self._create(wanted, deadline)
            self._log.warning("leader.read_failed", error=_describe(error))
            return False
        current = self._see(lease)
        if current.holder and current.holder != self.identity and self._valid():
            return False
        if current.holder == self.identity:
            wanted = replace(
                wanted, acquire_time=current.acquire_time, transitions=current.transitions
            )
        else:
            wanted = replace(wanted, transitions=current.transitions + 1)
        return self._write(wanted, deadline)

    def _release(self) -> None:
        """Hand the Lease back, if it is still ours (client-go's `release`)."""
        deadline = self._clock.monotonic() + self.timings.renew_deadline_s
        try:
            current = self._see(self._read(deadline))
        except Exception as error:
            self._log.warning("leader.release_failed", error=_describe(error))
            return
        if current.holder != self.identity:
            return
        now = micro_time(self._clock.now())
        if self._write(LeaseRecord("", 1, now, now, current.transitions), deadline):
            self._log.info("leader.released")

    def _valid(self) -> bool:
        """The observed record is within its lease duration of when we saw it change."""
        observed = self._observed
        if observed is None:
            return False
        return self._clock.monotonic() < self._observed_at + observed.duration_s

    def _see(self, lease: dict[str, Any]) -> LeaseRecord:
        """Take a Lease read from the server; the observation time moves only on a change."""
        record = LeaseRecord.from_lease(lease)
        self._lease = lease
        if record != self._observed:
            self._observed, self._observed_at = record, self._clock.monotonic()
        return record

    def _wrote(self, lease: dict[str, Any], record: LeaseRecord) -> None:
        self._lease = lease
        self._observed, self._observed_at = record, self._clock.monotonic()

    def _timeout(self, deadline: float) -> float:
        remaining = deadline - self._clock.monotonic()
        return max(0.05, min(self.timings.request_timeout_s, remaining))

    def _read(self, deadline: float) -> dict[str, Any]:
        return self._call("GET", deadline)

    def _create(self, record: LeaseRecord, deadline: float) -> bool:
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.spec(),
        }
        try:
            created = self._call("POST", deadline, lease)
        except Exception as error:
            self._log.info("leader.create_failed", error=_describe(error))
            return False
        self._wrote(created, record)
        return True

    def _write(self, record: LeaseRecord, deadline: float, *, quiet: bool = False) -> bool:
        """Replace the Lease last seen with `record`; False on a conflict or any error."""
        if self._lease is None:
            return False
        try:
            written = self._call("PUT", deadline, {**self._lease, "spec": record.spec()})
        except Exception as error:
            conflict = getattr(error, "status", None) == _HTTP_CONFLICT
            log = self._log.debug if quiet or conflict else self._log.warning
            log("leader.write_failed", error=_describe(error))
            return False
        self._wrote(written, record)
        return True

    def _call(
        self, method: str, deadline: float, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One request on the Lease (POST on the collection), the answer as raw JSON.

        Through `ApiClient.param_serialize`/`call_api` rather than `CoordinationV1Api`: the
        generated methods turn a dict body into a `V1Lease` and write its MicroTimes back with
        `datetime.isoformat()`, which drops the fraction at zero microseconds, and a real API
        server parses MicroTimes with the layout `2006-01-02T15:04:05.000000Z07:00`. A non-2xx
        answer raises the client's `ApiException` (`.status` 404, 409 ...).
        """
        path = _LEASES if method == "POST" else f"{_LEASES}/{{name}}"
        request = self._client.param_serialize(
            method=method, resource_path=path,
            path_params={"namespace": self.namespace, "name": self.name},
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body, auth_settings=["BearerToken"],
        )  # fmt: skip
        response = self._client.call_api(*request, _request_timeout=self._timeout(deadline))
        try:
            data: bytes = response.read()  # type: ignore[no-untyped-call]  # untyped client API
        finally:
            response.response.release_conn()
        if not 200 <= response.status <= 299:
            kubernetes.client.ApiException.from_response(
                http_resp=response, body=data.decode(errors="replace"), data=None
            )  # raises
        answer = orjson.loads(data)
        if not isinstance(answer, dict):
            raise TypeError(f"a Lease answer that is not an object: {type(answer).__name__}")
        return answer


def _describe(error: Exception) -> str:
    status = getattr(error, "status", None)
    if status is not None:
        return f"{status} {getattr(error, 'reason', '')}".strip()
    return repr(error)
