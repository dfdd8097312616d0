"""`static-usage-limit-policy`: the same saturation ceiling for every band (default 1.0).

With the default, a band dispatches while the pool's saturation is below 1.0; a lower
`threshold` keeps headroom (requests wait in the gateway earlier).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from igw.epp.framework.params import Params, decode_params

__all__ = ["StaticUsageLimitParams", "StaticUsageLimitPolicy"]


class StaticUsageLimitParams(Params, frozen=True):
    threshold: float = 1.0


class StaticUsageLimitPolicy:
    type_name: ClassVar[str] = "static-usage-limit-policy"

    def __init__(self, name: str | None = None, threshold: float = 1.0) -> None:
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        self.name = name or self.type_name
        self.threshold = threshold

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: object,  # noqa: ARG003 - the PluginHandle of the protocol; unused here
    ) -> Self:
        return cls(name, decode_params(params, StaticUsageLimitParams).threshold)

    def compute_limit(self, saturation: float, priorities: Sequence[int]) -> Sequence[float]:  # noqa: ARG002 - static
        return [self.threshold] * len(priorities)
