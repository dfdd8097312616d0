"""The Director through the real ext_proc sequencing: destination, errors, headers, admission,
and the InferenceObjective and InferenceModelRewrite stores behind it."""

import dataclasses
from typing import Any

import orjson
import pytest

from igw.common.envoy import BodyMode
from igw.common.errors import InferenceError
from igw.common.extproc import Stream, StreamInfo
from igw.common.testing import messages
from igw.epp.scheduling.plugins.inflight_load_producer import InflightLoadProducer
from igw.epp.testing.builders import endpoint
from igw.epp.testing.requestpath import (
    build_director,
    build_exchanges,
    request_error,
    run_request,
)

DUPLEX = BodyMode.FULL_DUPLEX_STREAMED
CHAT = {":method": "POST", ":path": "/v1/chat/completions", "content-type": "application/json"}
BODY = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
BUSY = endpoint("pod-0-rank-0", address="10.0.0.1", waiting=3)
IDLE = endpoint("pod-1-rank-0", address="10.0.0.2")
IDLE_RANK_1 = endpoint("pod-1-rank-1", address="10.0.0.2", port=8001, waiting=1)
LB = "envoy.lb"
DEST = "x-gateway-destination-endpoint"
TWO_PICKS = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- {type: queue-scorer}
- {type: max-score-picker, parameters: {maxNumOfEndpoints: 2}}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: queue-scorer}, {pluginRef: max-score-picker}]
"""


run = run_request
error_of = request_error


async def test_destination_header_and_metadata_carry_the_pick() -> None:
    replies = await run(build_director([BUSY, IDLE]))
    head, body = replies
    assert head.kind == "request_headers"
    assert head.set_headers[DEST] == "10.0.0.2:8000"
    assert head.dynamic_metadata == {LB: {DEST: "10.0.0.2:8000"}}
    assert head.clear_route_cache
    assert len(head.set_headers["x-request-id"]) == 36  # generated UUIDv4
    assert "content-length" not in head.set_headers  # body untouched
    assert (body.body, body.end_of_stream) == (BODY, True)


async def test_fallback_list_in_picker_order() -> None:
    replies = await run(build_director([BUSY, IDLE_RANK_1, IDLE], config=TWO_PICKS))
    assert replies[0].set_headers[DEST] == "10.0.0.2:8000,10.0.0.2:8001"
    assert replies[0].dynamic_metadata[LB][DEST] == "10.0.0.2:8000,10.0.0.2:8001"


def subset(*entries: object) -> dict[str, dict[str, Any]]:
    return {"envoy.lb.subset_hint": {"x-gateway-destination-endpoint-subset": list(entries)}}


@pytest.mark.parametrize(
    ("metadata", "destination"),
    [
        pytest.param(None, "10.0.0.2:8000", id="absent-all-endpoints"),
        pytest.param({"envoy.lb.subset_hint": {}}, "10.0.0.2:8000", id="key-absent-all"),
        pytest.param(subset("10.0.0.1:9999"), "10.0.0.1:8000", id="matched-by-ip-port-ignored"),
        pytest.param(subset("10.0.0.1:8000", 7), "10.0.0.1:8000", id="non-strings-ignored"),
    ],
)
async def test_subset_hint(metadata: dict[str, Any] | None, destination: str) -> None:
    replies = await run(build_director([BUSY, IDLE]), metadata=metadata)
    assert replies[0].set_headers[DEST] == destination


@pytest.mark.parametrize(
    "metadata",
    [pytest.param(subset(), id="empty-list"), pytest.param(subset("10.9.9.9:8000"), id="none")],
)
async def test_subset_without_candidates_is_503(metadata: dict[str, Any]) -> None:
    status, body = await error_of(build_director([BUSY, IDLE]), metadata=metadata)
    assert (status, body) == (
        503,
        (
            "inference error: ServiceUnavailable - failed to find endpoint candidates for "
            "serving the request"
        ),
    )


async def test_subset_filter_can_be_disabled() -> None:
    replies = await run(build_director([BUSY, IDLE], subset_filter=False), metadata=subset())
    assert replies[0].set_headers[DEST] == "10.0.0.2:8000"


async def test_header_only_request_goes_to_a_random_endpoint() -> None:
    director = build_director([BUSY, IDLE])
    seen = set()
    for _ in range(20):
        (head,) = await run(director, {":method": "GET", ":path": "/v1/models"}, None)
        assert head.dynamic_metadata[LB][DEST] == head.set_headers[DEST]
        seen.add(head.set_headers[DEST])
    assert seen == {"10.0.0.1:8000", "10.0.0.2:8000"}


async def test_header_only_request_without_pods_is_500() -> None:
    status, body = await error_of(build_director([]), body=None)
    assert (status, body) == (500, "inference error: Internal - no pods available in datastore")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"{", "inference error: BadRequest - error unmarshaling request bodyMap: ",
                     id="invalid-json"),
        pytest.param(b'{"messages":[{"role":"user","content":"x"}]}',
                     "inference error: BadRequest - model not found in request body",
                     id="missing-model"),
    ],
)  # fmt: skip
async def test_bad_bodies_are_400(body: bytes, expected: str) -> None:
    status, text = await error_of(build_director([IDLE]), body=body)
    assert status == 400
    assert text.startswith(expected)


async def test_no_endpoints_for_a_body_request_is_503() -> None:
    status, _ = await error_of(build_director([]))
    assert status == 503


async def test_scheduler_finding_nothing_is_429() -> None:
    config = TWO_PICKS.replace(
        "- {type: queue-scorer}\n",
        "- {type: queue-scorer}\n- {type: header-based-testing-filter}\n",
    ).replace(
        "[{pluginRef: queue-scorer}",
        "[{pluginRef: header-based-testing-filter}, {pluginRef: queue-scorer}",
    )
    headers = {**CHAT, "test-epp-endpoint-selection": "10.9.9.9"}
    status, body = await error_of(build_director([IDLE], config=config), headers=headers)
    assert status == 429
    assert body.startswith("inference error: ResourceExhausted - failed to find target endpoint")


SATURATED = endpoint("pod-0-rank-0", waiting=10)


@pytest.mark.parametrize(
    ("states", "objective", "shed"),
    [
        pytest.param([SATURATED], "batch", True, id="sheddable-saturated-shed"),
        pytest.param([IDLE], "batch", False, id="sheddable-idle-admitted"),
        pytest.param([SATURATED], "chat", False, id="critical-saturated-admitted"),
        pytest.param([SATURATED], None, False, id="no-objective-priority-0"),
    ],
)
async def test_sheddable_admission(states: list[Any], objective: str | None, shed: bool) -> None:
    director = build_director(states, objectives={"batch": -1, "chat": 10})
    headers = dict(CHAT)
    if objective is not None:
        headers["x-gateway-inference-objective"] = objective
    if not shed:
        assert DEST in (await run(director, headers))[0].set_headers
        return
    assert await error_of(director, headers=headers) == (
        429,
        "inference error: ResourceExhausted - system saturated, sheddable request dropped",
    )


async def test_control_and_client_destination_headers_are_removed() -> None:
    headers = {
        **CHAT,
        "x-request-id": "rid-1",
        "x-gateway-inference-objective": "chat",
        "x-gateway-inference-fairness-id": "tenant-a",
        "x-gateway-model-name-rewrite": "m",
        DEST: "6.6.6.6:80",
        "x-gateway-destination-endpoint-subset": "6.6.6.6:80",
        "x-gateway-destination-endpoint-served": "6.6.6.6:80",
    }
    head = (await run(build_director([IDLE]), headers))[0]
    assert head.set_headers == {DEST: "10.0.0.2:8000"}  # client's value overwritten, id kept
    assert sorted(head.remove_headers) == [
        "x-gateway-destination-endpoint-served",
        "x-gateway-destination-endpoint-subset",
        "x-gateway-inference-fairness-id",
        "x-gateway-inference-objective",
        "x-gateway-model-name-rewrite",
    ]


async def test_model_rewrite_header_changes_only_the_model() -> None:
    body = b'{"model": "m",  "messages":[{"role":"user","content":"hi"}]}'
    headers = {**CHAT, "x-gateway-model-name-rewrite": "lora-a"}
    head, chunk = await run(build_director([IDLE]), headers, body)
    expected = body.replace(b'"m"', b'"lora-a"')
    assert chunk.body == expected
    assert head.set_headers["content-length"] == str(len(expected))


async def test_request_metrics_are_labelled_with_both_models() -> None:
    director = build_director([IDLE], objectives={"chat": 2})
    headers = {**CHAT, "x-gateway-inference-objective": "chat",
               "x-gateway-model-name-rewrite": "t"}  # fmt: skip
    await run(director, headers)
    registry = director.metrics.registry
    labels = {"model_name": "m", "target_model_name": "t", "priority": "2"}
    assert registry.get_sample_value("inference_objective_request_total", labels) == 1
    assert registry.get_sample_value("inference_objective_running_requests", {"model_name": "m"})
    await error_of(director, body=b"[")
    errors = {"model_name": "", "target_model_name": "", "error_code": "BadRequest"}
    assert registry.get_sample_value("inference_objective_request_error_total", errors) == 1


IN_FLIGHT = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- {type: inflight-load-producer}
- {type: queue-scorer}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: queue-scorer}]
"""


async def test_a_body_that_cannot_take_the_model_is_refused_before_scheduling() -> None:
    """A 500 for a body the EPP cannot rewrite is found before the pick: the request is never
    counted against an endpoint, so nothing can stay in flight (upstream schedules first and
    must take the count back)."""
    director = build_director([IDLE], config=IN_FLIGHT)
    [producer] = director.request_control.pre_request_plugins
    assert isinstance(producer, InflightLoadProducer)
    exchange = build_exchanges(director)(StreamInfo(span=None))
    stream = Stream(exchange, DUPLEX, DUPLEX)
    # The nested model makes the rewrite re-encode the body, which fails on a number beyond
    # float range.
    body = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "meta": {"model": "m"}'
    body += b', "n": 1e400}'
    headers = {**CHAT, "x-gateway-model-name-rewrite": "t"}
    await stream.handle(messages.request_headers(headers, end_of_stream=False))
    with pytest.raises(InferenceError) as info:
        await stream.handle(messages.request_body(body, end_of_stream=True))
    assert (info.value.status, info.value.body()) == (
        500,
        "inference error: Internal - Error marshalling request body",
    )
    assert producer.tracker.loads == {}
    registry = director.metrics.registry
    attempts = "inference_extension_scheduler_attempts_total"
    assert not any(
        sample.name == attempts for metric in registry.collect() for sample in metric.samples
    )

    exchange.close(True)  # the servicer closes every stream, also after an error answer

    assert producer.tracker.loads == {}
    running = {"model_name": "m"}
    assert not registry.get_sample_value("inference_objective_running_requests", running)
    errors = {"model_name": "m", "target_model_name": "t", "error_code": "Internal"}
    assert registry.get_sample_value("inference_objective_request_error_total", errors) == 1


SHED = "inference error: ResourceExhausted - system saturated, sheddable request dropped"
NO_CANDIDATES_503 = (
    "inference error: ServiceUnavailable - failed to find endpoint candidates for serving the "
    "request"
)


@pytest.mark.parametrize(
    ("objective", "expected"),
    [
        pytest.param("batch", (429, SHED), id="sheddable-shed-first"),
        pytest.param("chat", (503, NO_CANDIDATES_503), id="others-503"),
    ],
)
async def test_no_candidates_sheds_a_sheddable_request_first(
    objective: str, expected: tuple[int, str]
) -> None:
    """As upstream: admission runs before the candidate check, and no candidates at all is a
    saturated pool to the saturation detector."""
    director = build_director([BUSY, IDLE], objectives={"batch": -1, "chat": 10})
    headers = {**CHAT, "x-gateway-inference-objective": objective}
    assert await error_of(director, headers=headers, metadata=subset()) == expected


async def test_scheduling_attempts_name_the_pod_and_its_namespace() -> None:
    """Upstream's labels: the pod (not the data-parallel rank) and its namespace."""
    ranked = endpoint("vllm-0-rank-1", address="10.0.0.1", port=8001)
    ranked = dataclasses.replace(
        ranked, endpoint=dataclasses.replace(ranked.endpoint, pod="vllm-0", namespace="serving")
    )
    director = build_director([ranked])
    await run(director)
    labels = {"status": "success", "target_model_name": "m", "pod_name": "vllm-0",
              "namespace": "serving", "port": "8001"}  # fmt: skip
    value = director.metrics.registry.get_sample_value(
        "inference_extension_scheduler_attempts_total", labels
    )
    assert value == 1
