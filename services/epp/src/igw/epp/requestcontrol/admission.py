"""Admission: whether a request may be scheduled at all (§5.1-5.2).

Without flow control (the default) the rule is upstream's legacy one: a sheddable request
(priority < 0) is dropped with 429 `system saturated, sheddable request dropped` when the
saturation detector reports the candidates' pool as saturated (>= 1.0); any other request is
admitted and queues on the model servers. `Admission` is the seam the flow-control layer
implements instead (`igw.epp.flowcontrol.FlowController`, `waits` True): it holds a request
until it can be dispatched, hence `async`, and follows it after scheduling (`HoldingAdmission`:
dispatched at PreRequest, finished at response completion, and an interruption future that
ends an in-flight request early: eviction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar, Protocol

from igw.common.errors import InferenceError, ResourceExhaustedError
from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.requestcontrol import SaturationDetector

__all__ = ["SHED_MESSAGE", "Admission", "HoldingAdmission", "LegacyAdmission", "admit"]

SHED_MESSAGE = "system saturated, sheddable request dropped"


class Admission(Protocol):
    """Returns when the request may proceed; raises an `InferenceError` when it may not.

    `waits`: the request may be held (the pool, and so its candidates, may change meanwhile).
    """

    @property
    def waits(self) -> bool: ...

    async def admit(
        self, request: InferenceRequest, candidates: Sequence[EndpointState]
    ) -> None: ...


class HoldingAdmission(Admission, Protocol):
    """An admission that waits, and follows admitted requests to their end."""

    def dispatched(self, request: InferenceRequest) -> None:
        """The request was scheduled (at PreRequest)."""
        ...

    def finished(self, request: InferenceRequest) -> None:
        """The request's response ended (at ResponseComplete), however it ended."""
        ...

    def interruption(self, request: InferenceRequest) -> asyncio.Future[InferenceError] | None:
        """A future resolving with the error to end the in-flight request with, if it may be."""
        ...


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

    waits: ClassVar[bool] = False

    def __init__(self, detector: SaturationDetector) -> None:
        self.detector = detector

    async def admit(self, request: InferenceRequest, candidates: Sequence[EndpointState]) -> None:
        admit(request, candidates, self.detector)
