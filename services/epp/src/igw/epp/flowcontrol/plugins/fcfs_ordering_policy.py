"""`fcfs-ordering-policy`: first come, first served (upstream's default ordering).

The key is the arrival time, which grows with arrival, so a FIFO queue holds it (upstream
approximates it the same way with its list queue).
"""

from __future__ import annotations

from typing import ClassVar

from igw.epp.framework.flowcontrol import QueuedRequest
from igw.epp.framework.params import ParameterlessPlugin

__all__ = ["FcfsOrderingPolicy"]


class FcfsOrderingPolicy(ParameterlessPlugin):
    type_name: ClassVar[str] = "fcfs-ordering-policy"
    needs_heap: ClassVar[bool] = False

    def sort_key(self, item: QueuedRequest) -> tuple[float, ...]:
        return (item.enqueued_at,)
