"""`Explain` without the wire: how the EPP would route one request, step by step.

The steps are the Director's (`igw.epp.requestpath.director`), with the same parser, control
headers, objectives, admission rule, request-control hooks and scheduler:

    control headers -> parse body (400s) -> target model, priority -> candidates (none: 503)
    -> legacy admission (sheddable + saturated: 429) -> PrepareData -> Admit (500)
    -> schedule with `explain=True` (none: 429)

and it stops there: no PreRequest (the prefix index and in-flight counts stay as they were),
nothing is sent upstream. Two differences from a real request: there is no proxy metadata, so the
subset hint is never applied (every endpoint is a candidate), and an empty body is taken as a
header-only request, which the Director sends to a uniformly random endpoint without scheduling.
Plugin latency histograms and prefix hit-ratio metrics do observe an explained request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from igw.common.errors import InferenceError, ServiceUnavailableError
from igw.epp.endpoints import EndpointSource, EndpointState, InferenceRequest
from igw.epp.parsers.contracts import Parser
from igw.epp.requestpath.director import NO_CANDIDATES
from igw.epp.requestpath.headers import read_control_headers
from igw.epp.requestpath.objectives import Objectives, StaticObjectives
from igw.epp.scheduling.admission import admit
from igw.epp.scheduling.contracts import SaturationDetector
from igw.epp.scheduling.cycle_state import CycleState
from igw.epp.scheduling.request_control import RequestControl
from igw.epp.scheduling.results import ProfileExplanation, SchedulingError, SchedulingResult
from igw.epp.scheduling.scheduler import Scheduler

__all__ = ["HEADER_ONLY_NOTE", "ExplainFailure", "Explainer", "Explanation"]

HEADER_ONLY_NOTE = "header-only request: sent to a uniformly random endpoint, not scheduled"


@dataclass(frozen=True, slots=True)
class ExplainFailure:
    """The error answer the request would get instead of being routed."""

    status: int
    code: str
    message: str

    @property
    def body(self) -> str:
        """The response body, as the ext_proc layer renders it."""
        return f"inference error: {self.code} - {self.message}"


@dataclass(frozen=True, slots=True)
class Explanation:
    request_id: str = ""
    model: str = ""
    """The model the body asks for."""
    target_model: str = ""
    priority: int = 0
    candidates: tuple[str, ...] = ()
    profiles: Mapping[str, ProfileExplanation] = field(default_factory=dict)
    """Every profile that ran, in order."""
    primary_profile: str = ""
    picked: tuple[str, ...] = ()
    """The primary profile's picks: the destination first."""
    error: ExplainFailure | None = None
    note: str = ""


class Explainer:
    """Explains requests against one EPP's live endpoints and configuration; holds no state."""

    def __init__(
        self,
        *,
        source: EndpointSource,
        scheduler: Scheduler,
        request_control: RequestControl,
        saturation_detector: SaturationDetector,
        parser: Parser,
        objectives: Objectives | None = None,
    ) -> None:
        self.source = source
        self.scheduler = scheduler
        self.request_control = request_control
        self.saturation_detector = saturation_detector
        self.parser = parser
        self.objectives = objectives if objectives is not None else StaticObjectives()

    def explain(self, path: str, headers: Mapping[str, str], body: bytes) -> Explanation:
        lowered = {name.lower(): value for name, value in headers.items()}
        control = read_control_headers(lowered)
        partial = Explanation(request_id=control.request_id)
        try:
            if not body:
                names = tuple(s.endpoint.name for s in self._candidates())
                return dataclasses.replace(partial, candidates=names, note=HEADER_ONLY_NOTE)
            parsed = self.parser.parse(path, body)
            target = control.model_rewrite or parsed.model
            priority = self.objectives.priority(control.objective)
            partial = dataclasses.replace(
                partial, model=parsed.model, target_model=target, priority=priority
            )
            request = InferenceRequest(
                request_id=control.request_id, target_model=target, headers=lowered,
                prompt_text=parsed.prompt_text, cache_salt=parsed.cache_salt, priority=priority,
                fairness_id=control.fairness_id, size_bytes=len(body), stream=parsed.stream,
            )  # fmt: skip
            candidates = self._candidates()
            partial = dataclasses.replace(
                partial, candidates=tuple(s.endpoint.name for s in candidates)
            )
            return self._schedule(partial, request, candidates)
        except InferenceError as e:
            return dataclasses.replace(partial, error=_failure(e))

    def _candidates(self) -> Sequence[EndpointState]:
        endpoints = self.source.endpoints()
        if not endpoints:
            raise ServiceUnavailableError(NO_CANDIDATES)
        return endpoints

    def _schedule(
        self, partial: Explanation, request: InferenceRequest, candidates: Sequence[EndpointState]
    ) -> Explanation:
        admit(request, candidates, self.saturation_detector)
        state = CycleState()
        self.request_control.prepare_data(request, state, candidates)
        self.request_control.admit(request, state, candidates)
        try:
            result = self.scheduler.schedule(request, candidates, state, explain=True)
        except SchedulingError as e:
            profiles = self._failed_profiles(request, candidates)
            return dataclasses.replace(partial, profiles=profiles, error=_failure(e))
        return _explained(partial, result)

    def _failed_profiles(
        self, request: InferenceRequest, candidates: Sequence[EndpointState]
    ) -> dict[str, ProfileExplanation]:
        """The first round's profiles run again, so a failed cycle still shows where the
        candidates were lost (the scheduler raises without its explanations)."""
        state = CycleState()
        self.request_control.prepare_data(request, state, candidates)
        profiles = self.scheduler.profiles
        names = self.scheduler.handler.pick_profiles(request, state, tuple(profiles), {})
        out: dict[str, ProfileExplanation] = {}
        for name in names:
            profile = profiles.get(name)
            run = profile.run(request, state, candidates, explain=True) if profile else None
            if run is not None and run.explanation is not None:
                out[name] = run.explanation
        return out


def _explained(partial: Explanation, result: SchedulingResult) -> Explanation:
    if not result.targets:  # a handler that returns no targets instead of raising
        return dataclasses.replace(
            partial,
            profiles=dict(result.explanations),
            primary_profile=result.primary_profile,
            error=_failure(SchedulingError("no endpoints available for the given request")),
        )
    return dataclasses.replace(
        partial,
        profiles=dict(result.explanations),
        primary_profile=result.primary_profile,
        picked=tuple(state.endpoint.name for state in result.targets),
    )


def _failure(error: InferenceError) -> ExplainFailure:
    return ExplainFailure(error.status, error.code, error.message)
