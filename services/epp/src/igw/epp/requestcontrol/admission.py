"""Admission: whether a request may be scheduled at all (§5.1-5.2).

Without flow control (the default) the rule is upstream's legacy one: a sheddable request
(priority < 0) is dropped with 429 `system saturated, sheddable request dropped` when the
saturation detector reports the candidates' pool as saturated (>= 1.0); any other request is
admitted and queues on the model servers. `Admission` is the seam the flow-control layer (a later
issue) implements instead: it may hold a request until it can be dispatched, hence `async`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from igw.common.errors import ResourceExhaustedError
from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.requestcontrol import SaturationDetector

__all__ = ["SHED_MESSAGE", "Admission", "LegacyAdmission", "admit"]

SHED_MESSAGE = "system saturated, sheddable request dropped"


class Admission(Protocol):
    """Returns when the request may proceed; raises an `InferenceError` when it may not."""

    async def admit(
        self, request: InferenceRequest, candidates: Sequence[EndpointState]
    ) -> None: ...


def admit(
    request: InferenceRequest,
    candidates: Sequence[EndpointState],
    detector: SaturationDetector,
) -> None:
    """Raises `ResourceExhaustedError` (429) for a sheddable request on a saturated pool."""
    if request.priority < 0 and detector.saturation(candidates) >= 1.0:
        raise ResourceExhaustedError(SHED_MESSAGE)


class LegacyAdmission:
    """`Admission` with flow control disabled: `admit` with one saturation detector."""

    def __init__(self, detector: SaturationDetector) -> None:
        self.detector = detector

    async def admit(self, request: InferenceRequest, candidates: Sequence[EndpointState]) -> None:
        admit(request, candidates, self.detector)
