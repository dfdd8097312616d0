"""One worker's link to the other workers of `igw-epp --workers N`: shared routing state.

Every worker schedules on its own (design D2, docs/concepts/workers.md) and keeps its own copy of
the state routing reads; this module keeps the copies alike. What a worker changes locally (a
prefix-index insert, a request counted in or out of flight, a dispatch-ledger entry, and, in the
scraper, a scrape) is queued as an op (`igw.epp.workers._wire`) and, `flush_s` after the first
op of a batch, sent as one datagram to each other worker's Unix socket (`SOCK_DGRAM`: no
connection to keep, message boundaries kept, a peer that is down is skipped). What arrives is
applied through the plugins' own methods that do not report back (`index.add`, `tracker.start`,
`ledger.replay`, `datastore.apply_metrics`), so nothing echoes.

Consistency is eventual: a peer sees an update a flush window (10 ms by default) plus a loop turn
later. A datagram that does not fit the peer's socket buffer is dropped and counted (`dropped`):
the index and ledgers heal as requests go on, and in-flight counts are corrected when the
request finishes (a finish for an unknown id is ignored). A restarted worker says HELLO; its
peers then forget the requests it had in flight (their streams died with it). The restarted
worker itself starts cold: an empty prefix index that fills from its peers' inserts from then on.

Leader election stays with worker 0 (one Lease per pod), but every worker answers health checks
on the shared ext_proc port (`--health-checking`), so worker 0 says whether it leads every
`LEADER_EVERY_S` (and the other workers answer as it said: `leading()`). A word older than
`LEADER_STALE_S` (worker 0 died or hangs) counts as not leading, as a worker 0 that lost its
Lease would.

Ownership: created and started by `EppService` on its event loop, after the datastore; the
socket is read with `loop.add_reader` (no task); `close()` flushes, removes the reader and the
socket file. Everything runs on the loop's thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from igw.epp.datalayer import Datastore
from igw.epp.endpoints import Endpoint, Metrics
from igw.epp.scheduling.plugins import (
    ApproxPrefixCacheProducer,
    ConcurrencyDetector,
    InflightLoadProducer,
    OnlineLatencyProducer,
)
from igw.epp.workers import _wire
from igw.epp.workers._wire import Op

__all__ = ["FLUSH_S", "LEADER_EVERY_S", "LEADER_STALE_S", "Peers", "WorkerRole"]

_log = structlog.get_logger(__name__)

FLUSH_S = 0.010
"""How long a batch collects ops before it goes out. Each datagram costs a send and a wake-up
of every peer, so a shorter window costs CPU per request: `make bench-epp`'s two workers
against one took 1.16x the CPU per request with 2 ms (twice) and 1.10-1.12x with 10 ms, while
the shared state stays far fresher than the 50 ms scrapes."""
_BATCH_BYTES = 48 * 1024
"""Flush early past this many (estimated) bytes: a datagram must fit the peer's socket buffer."""
_RECV_BYTES = 256 * 1024
LEADER_EVERY_S = 1.0
LEADER_STALE_S = 3.0


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """Which of the `count` workers this process is; `directory` holds their sockets."""

    index: int
    count: int
    directory: Path

    @property
    def scraper(self) -> bool:
        """Worker 0 scrapes the model servers (and holds the Lease, serves health)."""
        return self.index == 0

    def socket_path(self, index: int) -> Path:
        return self.directory / f"w{index}.sock"

    def ready_path(self, index: int) -> Path:
        return self.directory / f"w{index}.json"

    def write_ready(self, ports: Mapping[str, int]) -> None:
        """Tells the supervisor (and tests) this worker serves, and on which ports."""
        path = self.ready_path(self.index)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), **ports}))
        tmp.replace(path)


class Peers:
    """See the module docstring."""

    def __init__(
        self,
        role: WorkerRole,
        plugins: Mapping[str, object],
        datastore: Datastore | None,
        *,
        flush_s: float = FLUSH_S,
    ) -> None:
        self.role = role
        self.flush_s = flush_s
        self.datastore = datastore
        self.sent_ops = self.received_ops = self.dropped = 0
        self._prefix = {
            n: p for n, p in plugins.items() if isinstance(p, ApproxPrefixCacheProducer)
        }
        self._trackers = {
            n: p.tracker
            for n, p in plugins.items()
            if isinstance(p, ConcurrencyDetector | InflightLoadProducer)
        }
        self._ledgers = {
            n: p.ledger for n, p in plugins.items() if isinstance(p, OnlineLatencyProducer)
        }
        self._remote: dict[int, set[tuple[str, str]]] = {}
        """Sender -> (plugin, request id) it has in flight, forgotten when it says HELLO."""
        self._ops: list[list[Any]] = []
        self._bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._leader_said: tuple[bool, float] = (False, -math.inf)
        """Worker 0's last word on leadership, and when it arrived (monotonic)."""
        self._leader_timer: asyncio.TimerHandle | None = None

    def leading(self) -> bool:
        """Whether worker 0 said lately that it holds the Lease (module docstring)."""
        said, at = self._leader_said
        return said and time.monotonic() - at <= LEADER_STALE_S

    def say_leader(self, leading: Callable[[], bool], every_s: float = LEADER_EVERY_S) -> None:
        """Worker 0: tells the others `leading()` now and every `every_s` until `close()`."""
        if self._loop is None or self._sock is None:
            raise RuntimeError("say_leader before start() or after close()")
        self.queue([Op.LEADER, leading()], 8)
        self._leader_timer = self._loop.call_later(every_s, self.say_leader, leading, every_s)

    async def start(self) -> None:
        """Binds this worker's socket, hooks the plugins, and says HELLO."""
        self._loop = asyncio.get_running_loop()
        path = self.role.socket_path(self.role.index)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.setblocking(False)
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self.receive)
        self._hook()
        self.queue([Op.HELLO], 8)
        self.flush()

    def _hook(self) -> None:
        for name, producer in self._prefix.items():
            producer.on_insert = self._prefix_sender(name)
        for name, tracker in self._trackers.items():
            tracker.observer = _TrackerSender(self, name)
        for name, ledger in self._ledgers.items():
            ledger.on_dispatch = self._dispatch_sender(name)
        if self.role.scraper and self.datastore is not None:
            self.datastore.on_metrics = self._metrics_sent

    def _prefix_sender(self, plugin: str) -> Any:
        def send(endpoint: str, hashes: Sequence[int], capacity: int) -> None:
            self.queue([Op.PREFIX, plugin, endpoint, list(hashes), capacity], 9 * len(hashes))

        return send

    def _dispatch_sender(self, plugin: str) -> Any:
        def send(endpoint: str, at: float, tokens: int, ahead: int) -> None:
            self.queue([Op.DISPATCH, plugin, endpoint, at, tokens, ahead], 64)

        return send

    def _metrics_sent(self, endpoint: Endpoint, metrics: Metrics) -> None:
        self.queue(_wire.metrics_op(endpoint.name, endpoint.hostport, metrics), 128)

    def queue(self, op: list[Any], size: int) -> None:
        self._ops.append(op)
        self._bytes += size + 32
        if self._bytes >= _BATCH_BYTES:
            self.flush()
        elif self._timer is None and self._loop is not None:
            self._timer = self._loop.call_later(self.flush_s, self.flush)

    def flush(self) -> None:
        """Sends the queued ops to every other worker now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ops, self._ops, self._bytes = self._ops, [], 0
        if not ops or self._sock is None:
            return
        data = _wire.encode(self.role.index, ops)
        self.sent_ops += len(ops)
        for index in range(self.role.count):
            if index == self.role.index:
                continue
            try:
                self._sock.sendto(data, str(self.role.socket_path(index)))
            except (FileNotFoundError, ConnectionRefusedError):
                pass  # that worker is not up (yet, or again): it starts cold anyway
            except (BlockingIOError, OSError):
                self.dropped += len(ops)

    def receive(self) -> None:
        """Applies every datagram waiting on the socket (the event loop calls it when readable)."""
        sock = self._sock
        while sock is not None:
            try:
                data = sock.recv(_RECV_BYTES)
            except BlockingIOError:
                return
            try:
                sender, ops = _wire.decode(data)
            except ValueError:
                _log.warning("epp.workers.bad_datagram", size=len(data))
                continue
            self.received_ops += len(ops)
            for op in ops:
                self._apply(sender, op)

    def _apply(self, sender: int, op: list[Any]) -> None:
        code = op[0]
        if code == Op.PREFIX:
            producer = self._prefix.get(op[1])
            if producer is not None:
                producer.index.add(op[2], op[3], op[4])
        elif code == Op.START:
            tracker = self._trackers.get(op[1])
            if tracker is not None:
                tracker.start(op[2], op[3], op[4])
                self._remote.setdefault(sender, set()).add((op[1], op[2]))
        elif code == Op.FINISH:
            tracker = self._trackers.get(op[1])
            if tracker is not None:
                tracker.finish(op[2])
                self._remote.get(sender, set()).discard((op[1], op[2]))
        elif code == Op.DISPATCH:
            ledger = self._ledgers.get(op[1])
            if ledger is not None:
                ledger.replay(op[2], op[3], op[4], op[5])
        elif code == Op.METRICS:
            if self.datastore is not None:
                self.datastore.apply_metrics(*_wire.metrics_from_op(op))
        elif code == Op.HELLO:
            self._forget(sender)
        elif code == Op.LEADER and sender == 0:
            self._leader_said = (bool(op[1]), time.monotonic())

    def _forget(self, sender: int) -> None:
        for plugin, request_id in self._remote.pop(sender, set()):
            tracker = self._trackers.get(plugin)
            if tracker is not None:
                tracker.finish(request_id)

    def close(self) -> None:
        """Sends what is queued, then stops reading and removes the socket; idempotent."""
        if self._leader_timer is not None:
            self._leader_timer.cancel()
            self._leader_timer = None
        self.flush()
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(sock.fileno())
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.role.socket_path(self.role.index).unlink()


class _TrackerSender:
    """The `InFlightObserver` of one plugin's tracker."""

    def __init__(self, peers: Peers, plugin: str) -> None:
        self._peers = peers
        self._plugin = plugin

    def started(self, request_id: str, endpoint: str, tokens: int) -> None:
        self._peers.queue([Op.START, self._plugin, request_id, endpoint, tokens], 64)

    def finished(self, request_id: str) -> None:
        self._peers.queue([Op.FINISH, self._plugin, request_id], 48)
