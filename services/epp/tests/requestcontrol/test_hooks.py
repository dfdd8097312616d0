"""The hooks around a cycle: producers in order, admitters, PreRequest, response plugins,
completion."""

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from igw.common.errors import InternalError
from igw.epp.endpoints import Endpoint, EndpointState, InferenceRequest
from igw.epp.framework import CycleState, Response, SchedulerMetrics
from igw.epp.requestcontrol import RequestControl
from igw.epp.testing.builders import endpoints, request
from igw.epp.testing.fakes import FakePlugin


class Failing(FakePlugin):
    type_name: ClassVar[str] = "failing-producer"

    def prepare_data(self, request: InferenceRequest, state: CycleState, eps: Any) -> None:
        del eps, request, state  # unused: part of the protocol
        raise RuntimeError("boom")


class Denying(FakePlugin):
    type_name: ClassVar[str] = "denying-admitter"

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
    control = RequestControl(metrics, producers=[Failing("failing")])
    control.prepare_data(request(), CycleState(), endpoints(1))
    labels = {"extension_point": "PrepareData", "plugin_type": "failing-producer",
              "plugin_name": "failing"}  # fmt: skip
    count = "inference_extension_plugin_duration_seconds_count"
    assert metrics.registry.get_sample_value(count, labels) == 1


def test_admitter_denial_is_upstreams_500() -> None:
    control = RequestControl(SchedulerMetrics(), admitters=[Denying("deny")])
    control.run_admitters(request(), CycleState(), endpoints(1))
    with pytest.raises(InternalError, match=r"^request cannot be admitted$"):
        control.run_admitters(request(priority=-1), CycleState(), endpoints(1))


class Stamping(FakePlugin):
    """A response plugin that marks what it saw, or raises when told to."""

    type_name: ClassVar[str] = "stamping"

    def __init__(self, name: str, *, fail: bool = False) -> None:
        super().__init__(name)
        self.fail = fail

    def _stamp(self, response: Response) -> None:
        if self.fail:
            raise RuntimeError("boom")
        response.headers[f"x-{self.name}"] = "seen"
        response.set_metadata("envoy.lb", self.name, 1)

    def response_header(
        self, request: InferenceRequest, response: Response, endpoint: Endpoint | None
    ) -> None:
        del request, endpoint  # unused: part of the protocol
        self._stamp(response)

    def response_body(
        self, request: InferenceRequest, response: Response, endpoint: Endpoint | None
    ) -> None:
        del request, endpoint  # unused: part of the protocol
        self._stamp(response)


@pytest.mark.parametrize(
    ("hook", "extension_point"),
    [("response_header", "ResponseReceived"), ("response_body", "ResponseStreaming")],
)
def test_response_plugins_run_in_order_timed_and_a_failure_is_skipped(
    hook: str, extension_point: str
) -> None:
    metrics = SchedulerMetrics()
    plugins = [Stamping("first"), Stamping("broken", fail=True), Stamping("last")]
    control = (
        RequestControl(metrics, response_header=plugins)
        if hook == "response_header"
        else RequestControl(metrics, response_body=plugins)
    )
    response = Response("r1", {":status": "200"})

    getattr(control, hook)(request(), response, None)

    assert response.headers == {":status": "200", "x-first": "seen", "x-last": "seen"}
    assert response.dynamic_metadata == {"envoy.lb": {"first": 1, "last": 1}}
    count = "inference_extension_plugin_duration_seconds_count"
    for plugin in plugins:
        labels = {"extension_point": extension_point, "plugin_type": "stamping",
                  "plugin_name": plugin.name}  # fmt: skip
        assert metrics.registry.get_sample_value(count, labels) == 1


def test_no_response_plugins_says_so() -> None:
    control = RequestControl(SchedulerMetrics())
    assert (control.has_response_header, control.has_response_body) == (False, False)
