"""`slo-deadline-ordering-policy`: the earliest time-to-first-token deadline first.

The deadline is when the request arrived plus its `x-slo-ttft-ms` header (a non-negative integer
of milliseconds, as upstream parses it); a missing or invalid header means the far future, after
every request that has one. Equal deadlines go by arrival. The request's arrival is its enqueue
time: the EPP enqueues it as soon as its body is parsed. Needs a heap queue.
"""

from __future__ import annotations

import math
from typing import ClassVar

from igw.epp.framework.flowcontrol import QueuedRequest
from igw.epp.framework.params import ParameterlessPlugin

__all__ = ["SLO_TTFT_HEADER", "SloDeadlineOrderingPolicy"]

SLO_TTFT_HEADER = "x-slo-ttft-ms"


class SloDeadlineOrderingPolicy(ParameterlessPlugin):
    type_name: ClassVar[str] = "slo-deadline-ordering-policy"
    needs_heap: ClassVar[bool] = True

    def sort_key(self, item: QueuedRequest) -> tuple[float, ...]:
        return (_deadline(item), item.enqueued_at)


def _deadline(item: QueuedRequest) -> float:
    value = item.request.headers.get(SLO_TTFT_HEADER)
    if value is None:
        return math.inf
    text = value.strip()
    if not text.isascii() or not text.lstrip("+").isdigit():
        return math.inf  # upstream: strconv.ParseInt fails, or the value is negative
    return item.enqueued_at + int(text) / 1000.0
