"""`Explain` without the wire: how the EPP would route one request, step by step.

The steps are the Director's own (`igw.epp.requestpath.director`), run by the Director itself, so
an explanation cannot drift from what a live request gets:

    control headers -> parse body (400s) -> target model, priority -> candidates (none: 503)
    -> admission (sheddable + saturated: 429) -> PrepareData -> Admit (500)
    -> schedule with `explain=True` (none: 429)

and it stops there (`dry_run`): no PreRequest (the prefix index and in-flight counts stay as they
were), no scheduling attempt counted, nothing sent upstream. Two differences from a real request:
there is no proxy metadata, so the subset hint is never applied (every endpoint is a candidate),
and an empty body is taken as a header-only request, which the Director sends to a uniformly
random endpoint without scheduling. Plugin latency histograms and prefix hit-ratio metrics do
observe an explained request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from igw.common.errors import InferenceError
from igw.epp.endpoints import EndpointState
from igw.epp.framework import ProfileExplanation, SchedulingError
from igw.epp.requestpath import Director
from igw.epp.requestpath.headers import read_control_headers

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
    """Explains requests with one EPP's director; holds no state."""

    def __init__(self, director: Director) -> None:
        self.director = director

    async def explain(self, path: str, headers: Mapping[str, str], body: bytes) -> Explanation:
        lowered = {name.lower(): value for name, value in headers.items()}
        control = read_control_headers(lowered)
        partial = Explanation(request_id=control.request_id)
        director = self.director
        try:
            if not body:
                names = _names(director.candidates({}))
                return dataclasses.replace(partial, candidates=names, note=HEADER_ONLY_NOTE)
            facts = director.read(control, path, lowered, body, dry_run=True)
            partial = dataclasses.replace(
                partial, model=facts.incoming_model, target_model=facts.target_model,
                priority=facts.priority,
            )  # fmt: skip
            candidates = director.candidates({})
            partial = dataclasses.replace(partial, candidates=_names(candidates))
            result = await director.schedule(
                facts.inference, candidates, explain=True, dry_run=True
            )
        except SchedulingError as e:
            return dataclasses.replace(partial, profiles=dict(e.explanations), error=_failure(e))
        except InferenceError as e:
            return dataclasses.replace(partial, error=_failure(e))
        return dataclasses.replace(
            partial,
            profiles=dict(result.explanations),
            primary_profile=result.primary_profile,
            picked=_names(result.targets),
        )


def _names(endpoints: Sequence[EndpointState]) -> tuple[str, ...]:
    return tuple(state.endpoint.name for state in endpoints)


def _failure(error: InferenceError) -> ExplainFailure:
    return ExplainFailure(error.status, error.code, error.message)
