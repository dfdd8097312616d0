"""Objective name (`x-gateway-inference-objective`) -> priority (§5.1).

Upstream reads `InferenceObjective` resources; until the Kubernetes source exists, a static
mapping stands in. An unknown or absent objective means priority 0, as upstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["Objectives", "StaticObjectives"]


class Objectives(Protocol):
    def priority(self, objective: str | None) -> int:
        """The objective's priority; 0 when it is None or unknown. Negative = sheddable."""


class StaticObjectives:
    """A fixed name -> priority table."""

    def __init__(self, priorities: Mapping[str, int] | None = None) -> None:
        self._priorities = dict(priorities or {})

    def priority(self, objective: str | None) -> int:
        if objective is None:
            return 0
        return self._priorities.get(objective, 0)
