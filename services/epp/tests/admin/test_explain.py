"""Explainer: the Director's steps up to the pick, with each way a request can fail."""

from __future__ import annotations

import pytest

from igw.epp.admin.explain import HEADER_ONLY_NOTE, Explainer
from igw.epp.config import EppConfig, load_config
from igw.epp.endpoints import EndpointState
from igw.epp.framework import PluginHandle
from igw.epp.testing.admin_fleet import CHAT, MODEL, StaticSource, chat_body
from igw.epp.testing.builders import FakeClock, endpoint, seeded
from igw.epp.testing.requestpath import director_for

TESTING_FILTER = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: header-based-testing-filter
- type: queue-scorer
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: header-based-testing-filter}
  - {pluginRef: queue-scorer}
"""


def explainer(config: EppConfig, source: StaticSource) -> Explainer:
    return Explainer(director_for(config, source, objectives={"batch": -1, "chat": 5}))


async def test_control_headers_set_target_model_and_priority(
    config: EppConfig, source: StaticSource
) -> None:
    headers = {
        "X-Gateway-Model-Name-Rewrite": "food-review-1",
        "x-gateway-inference-objective": "chat",
        "x-request-id": "req-7",
    }

    e = await explainer(config, source).explain(CHAT, headers, chat_body("hi"))

    assert (e.request_id, e.model, e.target_model, e.priority) == (
        "req-7", MODEL, "food-review-1", 5,
    )  # fmt: skip
    assert e.candidates == ("pod-a-rank-0", "pod-b-rank-0", "pod-c-rank-0")
    assert e.error is None


@pytest.mark.parametrize(
    ("states", "objective", "status", "message"),
    [
        pytest.param([], "", 503, "failed to find endpoint candidates for serving the request",
                     id="no-endpoints"),
        pytest.param([endpoint(waiting=50, kv=0.95)], "batch", 429,
                     "system saturated, sheddable request dropped", id="sheddable-on-saturated"),
    ],
)  # fmt: skip
async def test_requests_refused_before_scheduling(
    config: EppConfig, states: list[EndpointState], objective: str, status: int, message: str
) -> None:
    source = StaticSource(states)
    headers = {"x-gateway-inference-objective": objective}

    e = await explainer(config, source).explain(CHAT, headers, chat_body("hi"))

    assert e.error is not None
    assert (e.error.status, e.error.message) == (status, message)
    assert e.profiles == {}


async def test_sheddable_request_on_an_idle_pool_is_scheduled(
    config: EppConfig, source: StaticSource
) -> None:
    headers = {"x-gateway-inference-objective": "batch"}

    e = await explainer(config, source).explain(CHAT, headers, chat_body("hi"))

    assert (e.priority, e.error, e.picked) == (-1, None, ("pod-c-rank-0",))


async def test_a_failed_cycle_still_shows_where_the_candidates_went(source: StaticSource) -> None:
    config = load_config(TESTING_FILTER, handle=PluginHandle(rng=seeded(), clock=FakeClock()))
    headers = {"test-epp-endpoint-selection": "10.9.9.9"}

    e = await explainer(config, source).explain(CHAT, headers, chat_body("hi"))

    assert e.error is not None
    assert (e.error.status, e.error.code) == (429, "ResourceExhausted")
    assert e.error.message.startswith("failed to find target endpoint")
    [step] = e.profiles["default"].filters
    assert (step.plugin, step.remaining) == ("header-based-testing-filter", ())


async def test_an_empty_body_is_a_header_only_request(
    config: EppConfig, source: StaticSource
) -> None:
    e = await explainer(config, source).explain("/v1/models", {}, b"")

    assert (e.note, e.error, e.profiles) == (HEADER_ONLY_NOTE, None, {})
    assert len(e.candidates) == 3
