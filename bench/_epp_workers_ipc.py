"""The cost of `igw-epp --workers`' sharing mechanism alone, in this process (informative).

Two `Peers` on real Unix datagram sockets; per request one prefix insert of 32 new blocks (a 2 KB
prompt) and an in-flight start and finish, flushed every 16 requests. Process CPU of the sending
side, of the receiving side (decode + apply), and of `index.add` alone (what applying an insert
costs in any design that keeps a local index), against one 8-byte shared-memory slot write
(`struct.pack_into`), the cheapest a shared counter gets.
"""

from __future__ import annotations

import asyncio
import struct
import tempfile
import time
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path

from bench._epp_common import table
from bench._errors import BenchmarkError
from igw.epp.datalayer import Datastore
from igw.epp.scheduling.plugins import ApproxPrefixCacheProducer, InflightLoadProducer
from igw.epp.workers import Peers, WorkerRole


@dataclass(frozen=True, slots=True)
class IpcCost:
    """Microseconds of CPU per request (`ipc_cost`)."""

    send_us: float
    receive_us: float
    index_add_us: float
    shm_write_us: float


def _peer(
    directory: Path, index: int
) -> tuple[ApproxPrefixCacheProducer, InflightLoadProducer, Peers]:
    prefix, inflight = ApproxPrefixCacheProducer(), InflightLoadProducer()
    plugins = {"prefix": prefix, "inflight": inflight}
    return (
        prefix,
        inflight,
        Peers(WorkerRole(index, 2, directory), plugins, Datastore(collect=False)),
    )


async def _ipc(requests: int, directory: Path) -> tuple[float, float]:
    (prefix, inflight, sender), (_, _, receiver) = _peer(directory, 0), _peer(directory, 1)
    await receiver.start()
    await sender.start()  # its HELLO: the receiver's first op
    send = receive = 0.0
    try:
        for i in range(requests):
            t0 = time.process_time()
            if prefix.on_insert is not None and inflight.tracker.observer is not None:
                prefix.on_insert("pod", [(i << 8) + j for j in range(32)], 31250)
                inflight.tracker.observer.started(f"r{i}", "pod", 500)
                inflight.tracker.observer.finished(f"r{i}")
            if i % 16 == 15:
                sender.flush()
                t1 = time.process_time()
                receiver.receive()
                receive += time.process_time() - t1
                t0 += time.process_time() - t1  # not the receiving side's time
            send += time.process_time() - t0
        sender.flush()
        receiver.receive()
    finally:
        sender.close()
        receiver.close()
    if receiver.received_ops != sender.sent_ops:
        raise BenchmarkError(f"ipc: {receiver.received_ops} of {sender.sent_ops} ops arrived")
    return send * 1e6 / requests, receive * 1e6 / requests


def ipc_cost(requests: int = 5000) -> IpcCost:
    with tempfile.TemporaryDirectory(prefix="igw-ipc-") as directory:
        send, receive = asyncio.run(_ipc(requests, Path(directory)))
    index = ApproxPrefixCacheProducer().index
    t0 = time.process_time()
    for i in range(requests):
        index.add("pod", [(i << 8) + j for j in range(32)], 31250)
    add = (time.process_time() - t0) * 1e6 / requests
    shm = shared_memory.SharedMemory(create=True, size=8 * 64)
    try:
        buffer = shm.buf
        if buffer is None:
            raise BenchmarkError("shared memory without a buffer")
        t0 = time.process_time()
        for i in range(100_000):
            struct.pack_into("q", buffer, (i % 64) * 8, i)
        write = (time.process_time() - t0) * 1e6 / 100_000
    finally:
        shm.close()
        shm.unlink()
    return IpcCost(send, receive, add, write)


def ipc_table(ipc: IpcCost) -> str:
    return table(
        ["per request (1 prefix insert of 32 blocks, in-flight start + finish)", "CPU µs"],
        [
            ["sending worker: hooks, msgpack, one datagram per 16 requests", f"{ipc.send_us:.1f}"],
            ["each receiving worker: decode + apply", f"{ipc.receive_us:.1f}"],
            ["of which any design pays: `index.add` of the 32 blocks", f"{ipc.index_add_us:.1f}"],
            ["for scale: one 8-byte shared-memory slot write", f"{ipc.shm_write_us:.2f}"],
        ],
    )
