"""`inflight-load-producer`: each endpoint's in-flight requests and estimated tokens.

PreRequest counts the request against its primary target (tokens ~ body bytes / 4 x 2.5, as
upstream); response completion takes it off again. PrepareData publishes the counts as the
`InFlightLoad` attribute for the scorers. No parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.framework.cycle_state import AttributeKey, CycleState
from igw.epp.framework.params import ParameterlessPlugin
from igw.epp.scheduling.attributes import INFLIGHT_LOAD
from igw.epp.scheduling.plugins._inflight import InFlightHooks, InFlightTracker

__all__ = ["InflightLoadProducer"]


class InflightLoadProducer(ParameterlessPlugin, InFlightHooks):
    type_name: ClassVar[str] = "inflight-load-producer"
    produces: ClassVar[tuple[AttributeKey[Any], ...]] = (INFLIGHT_LOAD,)
    consumes: ClassVar[tuple[AttributeKey[Any], ...]] = ()

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self.tracker = InFlightTracker()

    def prepare_data(
        self,
        request: InferenceRequest,  # noqa: ARG002 - protocol
        state: CycleState,
        endpoints: Sequence[EndpointState],  # noqa: ARG002 - every endpoint's load is published
    ) -> None:
        state.set_attributes(INFLIGHT_LOAD, self.tracker.loads)
