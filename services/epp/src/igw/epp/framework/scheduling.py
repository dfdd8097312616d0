"""The scheduling kinds (§3.2): profile handler, filter, scorer and picker, one `Protocol` each.

Every method runs on the event loop and must not block. Endpoint lists are never mutated in place:
a plugin returns new sequences. Plugins never clamp, weight or time themselves: the framework does
(STYLE §7). A plugin class may implement several kinds (`utilization-detector` is a Filter and a
SaturationDetector), as upstream's Go interfaces allow; `igw.epp.framework.kinds` says how a
class's kinds are known.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Literal, Protocol, runtime_checkable

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.framework.plugin import Plugin
from igw.epp.framework.results import ProfileResult, SchedulingResult

__all__ = ["Filter", "Picker", "ProfileHandler", "ScoreExplainer", "Scorer"]


class ProfileHandler(Plugin, Protocol):
    """Chooses which profiles run, in rounds, and which result is primary.

    `pick_profiles` is called with the results so far (None = that profile found no endpoint) and
    returns the names to run next, each at most once per cycle; an empty answer ends the loop.
    `process_results` turns the results into a `SchedulingResult` or raises `SchedulingError`.
    """

    def pick_profiles(
        self,
        request: InferenceRequest,
        state: CycleState,
        profiles: Sequence[str],
        results: Mapping[str, ProfileResult | None],
    ) -> Sequence[str]: ...

    def process_results(
        self,
        request: InferenceRequest,
        state: CycleState,
        results: Mapping[str, ProfileResult | None],
    ) -> SchedulingResult: ...


class Filter(Plugin, Protocol):
    """Returns the subset of `endpoints` the request may go to, in their original order.

    An empty result ends the profile with "no endpoints available"; filters run in order.
    """

    def filter(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> Sequence[EndpointState]: ...


class Scorer(Plugin, Protocol):
    """Returns one score per endpoint, aligned with `endpoints`; higher is better.

    Scores are meant to lie in [0, 1]; the framework clamps anything else (NaN -> 0) and multiplies
    by the profile's weight. An empty list gives an empty list. `category` says whether the scorer
    spreads load (`distribution`) or keeps requests where state is (`affinity`).
    """

    category: ClassVar[Literal["distribution", "affinity"]]

    def score(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> Sequence[float]: ...


@runtime_checkable
class ScoreExplainer(Protocol):
    """Optional beside `Scorer`: says, for `Explain` only, why each endpoint scored as it did.

    Called right after `score` with the same arguments; returns one short line per endpoint,
    aligned with `endpoints`. Never called on the hot path.
    """

    def score_details(
        self, request: InferenceRequest, state: CycleState, endpoints: Sequence[EndpointState]
    ) -> Sequence[str]: ...


class Picker(Plugin, Protocol):
    """Chooses the targets from `endpoints` by their weighted total `scores` (aligned).

    Returns between one and `maxNumOfEndpoints` distinct endpoints, best first, for a non-empty
    input, and nothing for an empty one. Ties are broken at random with the handle's RNG.
    """

    def pick(
        self,
        request: InferenceRequest,
        state: CycleState,
        endpoints: Sequence[EndpointState],
        scores: Sequence[float],
    ) -> Sequence[EndpointState]: ...
