"""`global-strict-fairness-policy`: no fairness between flows (upstream's default).

The band behaves as one queue: the flow whose head comes first by the band's ordering policy
dispatches (its key, ties by arrival).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from igw.epp.framework.flowcontrol import FlowView
from igw.epp.framework.params import ParameterlessPlugin

__all__ = ["GlobalStrictFairnessPolicy"]


class GlobalStrictFairnessPolicy(ParameterlessPlugin):
    type_name: ClassVar[str] = "global-strict-fairness-policy"

    def new_state(self) -> Any:
        return None

    def pick_flow(self, flows: Mapping[str, FlowView], state: Any) -> str | None:  # noqa: ARG002 - stateless
        best: str | None = None
        best_key: tuple[Any, ...] | None = None
        for fairness_id, flow in flows.items():
            key = flow.head_key()
            if key is not None and (best_key is None or key < best_key):
                best, best_key = fairness_id, key
        return best
