"""The ordering policies (fcfs, edf, slo-deadline) and the queues they need: which request of a
flow dispatches first."""

from __future__ import annotations

import math

import pytest

from igw.epp.flowcontrol.plugins import (
    EdfOrderingPolicy,
    FcfsOrderingPolicy,
    SloDeadlineOrderingPolicy,
)
from igw.epp.flowcontrol.queue import FlowQueue, QueueItem
from igw.epp.framework.flowcontrol import OrderingPolicy
from igw.epp.testing.flowcontrol import queued


def drain(ordering: OrderingPolicy, items: list[tuple[str, QueueItem]]) -> list[str]:
    flow = FlowQueue("f", ordering, 0.0)
    named = {}
    for name, it in items:
        named[id(it)] = name
        flow.push(it)
    out = []
    while (head := flow.pop(0.0)) is not None:
        out.append(named[id(head)])
    return out


def test_fcfs_is_arrival_order_on_a_fifo() -> None:
    assert not FcfsOrderingPolicy.needs_heap
    items = [("a", queued(at=2.0)), ("b", queued(at=1.0)), ("c", queued(at=3.0))]
    assert drain(FcfsOrderingPolicy(), items) == ["a", "b", "c"]  # queue order is arrival


def test_edf_orders_by_enqueue_plus_ttl_and_no_ttl_goes_last() -> None:
    items = [
        ("no-ttl", queued(at=0.0)),
        ("late", queued(at=0.0, ttl=10.0)),
        ("soon", queued(at=5.0, ttl=1.0)),
        ("soon-too", queued(at=5.5, ttl=0.5)),  # same deadline: arrival decides
    ]
    assert drain(EdfOrderingPolicy(), items) == ["soon", "soon-too", "late", "no-ttl"]


@pytest.mark.parametrize(
    ("header", "deadline"),
    [
        pytest.param("250", 10.25, id="ms"),
        pytest.param(" 250 ", 10.25, id="spaces"),
        pytest.param(None, math.inf, id="missing"),
        pytest.param("-5", math.inf, id="negative"),
        pytest.param("1.5", math.inf, id="not-an-integer"),
        pytest.param("abc", math.inf, id="garbage"),
    ],
)
def test_slo_deadline_reads_the_ttft_header(header: str | None, deadline: float) -> None:
    headers = {} if header is None else {"x-slo-ttft-ms": header}
    assert SloDeadlineOrderingPolicy().sort_key(queued(at=10.0, headers=headers))[0] == deadline


def test_slo_deadline_dispatches_the_tightest_slo_first() -> None:
    items = [
        ("none", queued(at=0.0)),
        ("loose", queued(at=0.0, headers={"x-slo-ttft-ms": "5000"})),
        ("tight", queued(at=1.0, headers={"x-slo-ttft-ms": "100"})),
    ]
    assert drain(SloDeadlineOrderingPolicy(), items) == ["tight", "loose", "none"]


def test_a_heap_queue_forgets_removed_requests_at_once() -> None:
    flow = FlowQueue("f", EdfOrderingPolicy(), 0.0)
    kept, removed = queued(at=1.0, ttl=1.0, size=3), queued(at=0.0, ttl=1.0, size=5)
    flow.push(kept)
    flow.push(removed)
    flow.remove(removed, 2.0)
    assert (len(flow), flow.byte_size) == (1, 3)
    assert flow.head() is kept
    assert flow.pop(3.0) is kept
    assert (len(flow), flow.byte_size, flow.idle_since) == (0, 0, 3.0)
    assert flow.pop(3.0) is None
