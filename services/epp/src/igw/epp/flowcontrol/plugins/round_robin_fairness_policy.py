"""`round-robin-fairness-policy`: flows take dispatch turns, one request each.

A cursor per band walks the flows in sorted fairness-id order from the one picked last, skipping
empty flows (upstream's algorithm): two backlogged tenants get equal turns whatever their offered
load. The unit of fairness is a dispatch, not bytes or tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from igw.epp.framework.flowcontrol import FlowView
from igw.epp.framework.params import ParameterlessPlugin

__all__ = ["RoundRobinFairnessPolicy"]


@dataclass(slots=True)
class _Cursor:
    last: str | None = None


class RoundRobinFairnessPolicy(ParameterlessPlugin):
    type_name: ClassVar[str] = "round-robin-fairness-policy"

    def new_state(self) -> Any:
        return _Cursor()

    def pick_flow(self, flows: Mapping[str, FlowView], state: Any) -> str | None:
        cursor: _Cursor = state
        keys = sorted(flows)
        start = 0
        if cursor.last is not None:
            # The first key after the last pick (it may have been garbage-collected since).
            start = next((i for i, k in enumerate(keys) if k > cursor.last), 0)
        for i in range(len(keys)):
            key = keys[(start + i) % len(keys)]
            if len(flows[key]) > 0:
                cursor.last = key
                return key
        cursor.last = None
        return None
