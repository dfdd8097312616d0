"""Flows for the policy tests, built from real `FlowQueue`s."""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from igw.epp.endpoints import InferenceRequest
from igw.epp.flowcontrol.plugins import FcfsOrderingPolicy
from igw.epp.flowcontrol.queue import FlowQueue, QueueItem
from igw.epp.framework.flowcontrol import OrderingPolicy

_seq = itertools.count()


def item(
    fairness_id: str = "f",
    *,
    at: float = 0.0,
    ttl: float = 0.0,
    size: int = 1,
    headers: Mapping[str, str] | None = None,
) -> QueueItem:
    request = InferenceRequest("r", "m", dict(headers or {}), fairness_id=fairness_id)
    labels = (fairness_id, "0", "pool", "m", "m")
    return QueueItem(request, 0, fairness_id, size, at, ttl, next(_seq), labels)


def flows(
    backlog: Mapping[str, int], ordering: OrderingPolicy | None = None, size: int = 1
) -> dict[str, FlowQueue]:
    """Flows with `backlog[id]` requests each (arrival order: by flow, then by index)."""
    made = {}
    for fairness_id, n in backlog.items():
        flow = FlowQueue(fairness_id, ordering or FcfsOrderingPolicy(), 0.0)
        for i in range(n):
            flow.push(item(fairness_id, at=float(i), size=size))
        made[fairness_id] = flow
    return made
