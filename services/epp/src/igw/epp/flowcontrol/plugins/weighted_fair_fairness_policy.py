"""`weighted-fair-fairness-policy` (igw, beyond upstream): deficit round robin with a weight per
fairness id.

Each backlogged flow gets a share of dispatches (or of bytes) proportional to its weight:
`weights: {tenant-a: 3, tenant-b: 1}` gives tenant-a three requests for each of tenant-b's while
both wait; a fairness id not listed has `defaultWeight` (1). `unit: requests` (the default)
counts dispatches, `unit: bytes` counts request bytes (then a flow earns `quantumBytes` x weight
per round).

Deficit round robin (Shreedhar & Varghese): flows are visited in sorted fairness-id order; on its
visit a flow earns weight x quantum of credit and dispatches its head while the credit covers it.
An empty flow loses its credit (no banking while idle). The cursor stays on a flow while its
credit lasts, so the picks of one round come out as runs (a, a, a, b for 3:1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Self

import msgspec

from igw.epp.framework.flowcontrol import FlowView
from igw.epp.framework.params import Params, decode_params

__all__ = ["WeightedFairFairnessPolicy", "WeightedFairParams"]


class WeightedFairParams(Params, frozen=True):
    weights: dict[str, float] = msgspec.field(default_factory=dict)
    default_weight: float = 1.0
    unit: Literal["requests", "bytes"] = "requests"
    quantum_bytes: int = 65536


@dataclass(slots=True)
class _Round:
    current: str | None = None
    credit: dict[str, float] = field(default_factory=dict)


class WeightedFairFairnessPolicy:
    type_name: ClassVar[str] = "weighted-fair-fairness-policy"

    def __init__(
        self,
        name: str | None = None,
        weights: Mapping[str, float] | None = None,
        *,
        default_weight: float = 1.0,
        unit: Literal["requests", "bytes"] = "requests",
        quantum_bytes: int = 65536,
    ) -> None:
        self.name = name or self.type_name
        self.weights = dict(weights or {})
        for fairness_id, weight in [*self.weights.items(), ("defaultWeight", default_weight)]:
            if not weight > 0 or math.isinf(weight):
                raise ValueError(
                    f"weight of {fairness_id!r} must be a positive number, got {weight}"
                )
        if quantum_bytes <= 0:
            raise ValueError(f"quantumBytes must be positive, got {quantum_bytes}")
        self.default_weight = default_weight
        self.by_bytes = unit == "bytes"
        self.quantum = float(quantum_bytes) if self.by_bytes else 1.0

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: object,  # noqa: ARG003 - the PluginHandle of the protocol; unused here
    ) -> Self:
        p = decode_params(params, WeightedFairParams)
        return cls(
            name, p.weights, default_weight=p.default_weight, unit=p.unit,
            quantum_bytes=p.quantum_bytes,
        )  # fmt: skip

    def weight(self, fairness_id: str) -> float:
        return self.weights.get(fairness_id, self.default_weight)

    def new_state(self) -> Any:
        return _Round()

    def pick_flow(self, flows: Mapping[str, FlowView], state: Any) -> str | None:
        rnd: _Round = state
        keys = sorted(k for k, flow in flows.items() if len(flow) > 0)
        for gone in [k for k in rnd.credit if k not in keys]:
            del rnd.credit[gone]  # an empty flow keeps no credit
        if not keys:
            rnd.current = None
            return None
        if rnd.current not in keys:
            rnd.current = self._next(keys, rnd.current)
            rnd.credit[rnd.current] = self._earned(rnd.current)
        costs = {k: self._cost(flows[k]) for k in keys}
        self._skip_empty_rounds(keys, costs, rnd)
        while rnd.credit.get(rnd.current, 0.0) < costs[rnd.current]:
            rnd.current = self._next(keys, rnd.current)
            rnd.credit[rnd.current] = rnd.credit.get(rnd.current, 0.0) + self._earned(rnd.current)
        rnd.credit[rnd.current] -= costs[rnd.current]
        return rnd.current

    def _skip_empty_rounds(self, keys: list[str], costs: dict[str, float], rnd: _Round) -> None:
        """Bytes mode: when no flow can pay for its head this round, grant every flow the rounds
        the closest one still needs at once, instead of looping round after round."""
        rounds = min(
            math.ceil(max(costs[k] - rnd.credit.get(k, 0.0), 0.0) / self._earned(k)) for k in keys
        )
        if rounds > 1:
            for k in keys:
                rnd.credit[k] = rnd.credit.get(k, 0.0) + (rounds - 1) * self._earned(k)

    def _earned(self, fairness_id: str) -> float:
        return self.quantum * self.weight(fairness_id)

    def _cost(self, flow: FlowView) -> float:
        if not self.by_bytes:
            return 1.0
        head = flow.head()
        return float(max(head.size, 1)) if head is not None else 1.0

    @staticmethod
    def _next(keys: list[str], current: str | None) -> str:
        if current is None:
            return keys[0]
        return next((k for k in keys if k > current), keys[0])
