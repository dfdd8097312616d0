"""`single-profile-handler`: runs every profile once; exactly one must exist, and it is primary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

from igw.epp.endpoints import InferenceRequest
from igw.epp.scheduling.cycle_state import CycleState
from igw.epp.scheduling.handle import PluginHandle
from igw.epp.scheduling.plugins._params import NoParams, decode_params
from igw.epp.scheduling.results import ProfileResult, SchedulingError, SchedulingResult

__all__ = ["SingleProfileHandler"]


class SingleProfileHandler:
    type_name: ClassVar[str] = "single-profile-handler"

    def __init__(self, name: str = type_name) -> None:
        self.name = name

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: PluginHandle,  # noqa: ARG003 - protocol
    ) -> Self:
        decode_params(params, NoParams)
        return cls(name)

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
