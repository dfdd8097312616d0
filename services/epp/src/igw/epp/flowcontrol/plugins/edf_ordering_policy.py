"""`edf-ordering-policy`: earliest deadline first, the deadline being enqueue time + TTL.

A request without a TTL has a deadline in the far future (after every request with one); equal
deadlines go by arrival. Needs a heap queue.
"""

from __future__ import annotations

import math
from typing import ClassVar

from igw.epp.framework.flowcontrol import QueuedRequest
from igw.epp.framework.params import ParameterlessPlugin

__all__ = ["EdfOrderingPolicy"]


class EdfOrderingPolicy(ParameterlessPlugin):
    type_name: ClassVar[str] = "edf-ordering-policy"
    needs_heap: ClassVar[bool] = True

    def sort_key(self, item: QueuedRequest) -> tuple[float, ...]:
        deadline = item.enqueued_at + item.ttl if item.ttl > 0 else math.inf
        return (deadline, item.enqueued_at)
