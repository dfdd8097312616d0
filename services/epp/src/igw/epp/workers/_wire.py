"""What the workers of one `igw-epp --workers N` tell each other, and its encoding.

One datagram is one msgpack array `[sender, ops]`; each op is an array whose first item says
what it is (the `Op` codes). Plugins are named by their name in the EndpointPickerConfig, which
every worker loads from the same flags, so the names agree.

    PREFIX   [0, plugin, endpoint, [hash...], capacity]   a prefix-index insert
    START    [1, plugin, request_id, endpoint, tokens]     a request counted in flight
    FINISH   [2, plugin, request_id]                       ... and no longer
    DISPATCH [3, plugin, endpoint, at, tokens, ahead]      a dispatch-ledger entry (`at`: monotonic)
    METRICS  [4, endpoint, hostport, waiting, running, kv_cache_usage, [active...], [waiting...],
              max_active_models, cache_block_size, cache_num_blocks, updated_at]
    HELLO    [5]                                           the sender (re)started: forget its
                                                           requests in flight
    LEADER   [6, leading]                                  worker 0 holds (or not) the pod's
                                                           Lease; said every `LEADER_EVERY_S`

`time.monotonic()` is CLOCK_MONOTONIC on Linux, one clock for every process of the host, so
`at` and `updated_at` mean the same in the receiver.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from igw.epp.endpoints import Metrics

__all__ = ["Op", "decode", "encode", "metrics_from_op", "metrics_op"]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(tuple[int, list[list[Any]]])


class Op(enum.IntEnum):
    PREFIX = 0
    START = 1
    FINISH = 2
    DISPATCH = 3
    METRICS = 4
    HELLO = 5
    LEADER = 6


def encode(sender: int, ops: list[list[Any]]) -> bytes:
    return _encoder.encode((sender, ops))


def decode(data: bytes) -> tuple[int, list[list[Any]]]:
    """Raises `msgspec.DecodeError` (a `ValueError`) on a datagram of another shape."""
    return _decoder.decode(data)


def metrics_op(name: str, hostport: str, m: Metrics) -> list[Any]:
    return [
        Op.METRICS, name, hostport, m.waiting, m.running, m.kv_cache_usage,
        sorted(m.active_models), sorted(m.waiting_models), m.max_active_models,
        m.cache_block_size, m.cache_num_blocks, m.updated_at,
    ]  # fmt: skip


def metrics_from_op(op: list[Any]) -> tuple[str, str, Metrics]:
    metrics = Metrics(
        waiting=op[3], running=op[4], kv_cache_usage=op[5], active_models=frozenset(op[6]),
        waiting_models=frozenset(op[7]), max_active_models=op[8], cache_block_size=op[9],
        cache_num_blocks=op[10], updated_at=op[11],
    )  # fmt: skip
    return op[1], op[2], metrics
