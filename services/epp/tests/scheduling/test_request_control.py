"""The hooks around a cycle: producers in order, admitters, PreRequest, completion."""

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from igw.common.errors import InternalError
from igw.epp.endpoints import EndpointState, InferenceRequest
from igw.epp.scheduling import CycleState, RequestControl, SchedulerMetrics
from igw.epp.testing.builders import endpoints, request


class Failing:
    type_name: ClassVar[str] = "failing-producer"
    name = "failing"

    def prepare_data(self, request: InferenceRequest, state: CycleState, eps: Any) -> None:
        del eps, request, state  # unused: part of the protocol
        raise RuntimeError("boom")


class Denying:
    type_name: ClassVar[str] = "denying-admitter"
    name = "deny"

    def admit_request(
        self,
        request: InferenceRequest,
        state: CycleState,
        eps: Sequence[EndpointState],
    ) -> str | None:
        del eps, state  # unused: part of the protocol
        return "no" if request.priority < 0 else None


def test_a_failing_producer_is_logged_and_skipped() -> None:
    metrics = SchedulerMetrics()
    control = RequestControl(metrics, producers=[Failing()])  # type: ignore[list-item]
    control.prepare_data(request(), CycleState(), endpoints(1))
    labels = {"extension_point": "PrepareData", "plugin_type": "failing-producer",
              "plugin_name": "failing"}  # fmt: skip
    count = "inference_extension_plugin_duration_seconds_count"
    assert metrics.registry.get_sample_value(count, labels) == 1


def test_admitter_denial_is_upstreams_500() -> None:
    control = RequestControl(SchedulerMetrics(), admitters=[Denying()])  # type: ignore[list-item]
    control.admit(request(), CycleState(), endpoints(1))
    with pytest.raises(InternalError, match=r"^request cannot be admitted$"):
        control.admit(request(priority=-1), CycleState(), endpoints(1))
