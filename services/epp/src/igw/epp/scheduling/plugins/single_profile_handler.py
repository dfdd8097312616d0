"""`single-profile-handler`: runs every profile once; exactly one must exist, and it is primary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from igw.epp.endpoints import InferenceRequest
from igw.epp.framework.cycle_state import CycleState
from igw.epp.framework.params import ParameterlessPlugin
from igw.epp.framework.results import ProfileResult, SchedulingError, SchedulingResult

__all__ = ["SingleProfileHandler"]


class SingleProfileHandler(ParameterlessPlugin):
    type_name: ClassVar[str] = "single-profile-handler"

    def pick_profiles(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,  # noqa: ARG002 - protocol
        profiles: Sequence[str],
        results: Mapping[str, ProfileResult | None],
    ) -> Sequence[str]:
        return () if results else profiles

    def process_results(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,  # noqa: ARG002 - protocol
        results: Mapping[str, ProfileResult | None],
    ) -> SchedulingResult:
        if len(results) != 1:
            raise SchedulingError(
                f"single-profile-handler needs exactly one profile result, got {len(results)}"
            )
        [(profile, result)] = results.items()
        if result is None:
            raise SchedulingError(f"failed to run scheduler profile '{profile}'")
        return SchedulingResult({profile: result}, profile)
