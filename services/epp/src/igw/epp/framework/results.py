"""What a scheduling cycle returns, and the error it fails with.

`SchedulingResult` holds each profile's picks and names the primary profile, whose first target
is where the request goes (the rest are Envoy's fallbacks). With `explain=True` it also carries a
`ProfileExplanation` per profile that ran: the endpoints left after each filter, every scorer's
clamped scores, and the weighted totals the picker saw; the hot path never builds these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from igw.common.errors import ResourceExhaustedError
from igw.epp.endpoints import EndpointState

__all__ = [
    "FilterStep",
    "ProfileExplanation",
    "ProfileResult",
    "SchedulingError",
    "SchedulingResult",
    "ScoreColumn",
]


class SchedulingError(ResourceExhaustedError):
    """No endpoint could be picked; answered 429 like upstream's Director does.

    A cycle run with `explain=True` attaches what its profiles saw (`explanations`), so a failed
    request can still be explained.
    """

    def __init__(
        self, detail: str, explanations: Mapping[str, ProfileExplanation] | None = None
    ) -> None:
        super().__init__(f"failed to find target endpoint: {detail}")
        self.detail = detail
        self.explanations: Mapping[str, ProfileExplanation] = explanations or {}


@dataclass(frozen=True, slots=True)
class ProfileResult:
    """The endpoints one profile's picker chose, best first; never empty."""

    targets: tuple[EndpointState, ...]


@dataclass(frozen=True, slots=True)
class FilterStep:
    plugin: str
    remaining: tuple[str, ...]
    """Names of the endpoints this filter let through."""


@dataclass(frozen=True, slots=True)
class ScoreColumn:
    plugin: str
    plugin_type: str
    weight: float
    scores: tuple[float, ...]
    """Clamped to [0, 1], in the order of `ProfileExplanation.endpoints`; not yet weighted."""
    details: tuple[str, ...] = ()
    """Why each endpoint scored so, same order; empty unless the scorer is a `ScoreExplainer`."""


@dataclass(frozen=True, slots=True)
class ProfileExplanation:
    endpoints: tuple[str, ...]
    """The endpoints that reached the scorers."""
    filters: tuple[FilterStep, ...]
    scorers: tuple[ScoreColumn, ...]
    totals: tuple[float, ...]
    picked: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SchedulingResult:
    profile_results: Mapping[str, ProfileResult | None]
    """Every profile that ran; None where the profile found no endpoint."""
    primary_profile: str
    explanations: Mapping[str, ProfileExplanation] = field(default_factory=dict)

    @property
    def targets(self) -> tuple[EndpointState, ...]:
        """The primary profile's picks: the destination first, then fallbacks."""
        primary = self.profile_results.get(self.primary_profile)
        return primary.targets if primary is not None else ()
