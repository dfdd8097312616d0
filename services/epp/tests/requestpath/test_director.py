"""The Director through the real ext_proc sequencing: destination, errors, headers, admission,
and the InferenceObjective and InferenceModelRewrite stores behind it."""

from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from igw.common.envoy import BodyMode, ProcessingRequest
from igw.common.errors import InferenceError
from igw.common.extproc import Stream, StreamInfo
from igw.common.testing import messages
from igw.common.testing.messages import ReplyView
from igw.epp.framework.parsing import Parser
from igw.epp.parsers import PassthroughParser
from igw.epp.requestpath import Director, ModelRewriteStore, ObjectiveStore
from igw.epp.requestpath.headers import read_control_headers
from igw.epp.scheduling.plugins.inflight_load_producer import InflightLoadProducer
from igw.epp.testing.builders import endpoint, seeded
from igw.epp.testing.requestpath import build_director, build_exchanges

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


async def run(
    director: Director,
    headers: Mapping[str, str] = CHAT,
    body: bytes | None = BODY,
    *,
    metadata: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[ReplyView]:
    """Every reply to the request messages (body None = header-only request)."""
    stream = Stream(build_exchanges(director)(StreamInfo(span=None)), DUPLEX, DUPLEX)
    sent: list[ProcessingRequest] = [
        messages.request_headers(headers, end_of_stream=body is None, metadata=metadata)
    ]
    if body is not None:
        sent.append(messages.request_body(body, end_of_stream=True))
    replies: list[ReplyView] = []
    for message in sent:
        replies.extend(messages.describe_all(await stream.handle(message)))
    return replies


async def error_of(director: Director, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(InferenceError) as info:
        await run(director, **kwargs)
    return info.value.status, info.value.body()


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


# InferenceObjective and InferenceModelRewrite stores behind the Director.


def with_stores(
    states: list[Any],
    *,
    objectives: ObjectiveStore | None = None,
    rewrites: ModelRewriteStore | None = None,
    parser: Parser | None = None,
) -> Director:
    """`build_director`'s wiring around the Kubernetes-fed stores (the helper takes only a
    name -> priority map for objectives, and no rewrites)."""
    base = build_director(states, parser=parser)
    return Director(
        source=base.source, scheduler=base.scheduler, request_control=base.request_control,
        parser=base.parser, metrics=base.metrics, objectives=objectives, rewrites=rewrites,
        rng=seeded(1),
    )  # fmt: skip


def rewrites_for(*models: str, to: str = "canary") -> ModelRewriteStore:
    """One InferenceModelRewrite, `canary`, for our pool: `models` (none: every model) -> `to`."""
    rule: dict[str, Any] = {"targets": [{"modelRewrite": to}]}
    if models:
        rule["matches"] = [{"model": {"value": m}} for m in models]
    store = ModelRewriteStore("pool", rng=seeded())
    store.reconcile("ns/canary", {
        "metadata": {"name": "canary", "namespace": "ns",
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"poolRef": {"name": "pool"}, "rules": [rule]},
    })  # fmt: skip
    return store


def decisions(director: Director, target: str) -> float | None:
    labels = {"model_rewrite_name": "canary", "model_name": "m", "target_model": target}
    return director.metrics.registry.get_sample_value(
        "inference_extension_model_rewrite_decisions_total", labels
    )


@pytest.mark.parametrize(
    ("rule_for", "header", "target"),
    [
        # Upstream sets the target from the header, then lets a rule on the body's model
        # replace it (director.go, mutateModel -> applyWeightedModelRewrite).
        pytest.param("m", "lora-a", "canary", id="rule-beats-header"),
        pytest.param("m", None, "canary", id="rule-alone"),
        pytest.param("other", "lora-a", "lora-a", id="header-when-no-rule-matches"),
        # Rules match the body's model, never the header's.
        pytest.param("lora-a", "lora-a", "lora-a", id="rule-for-the-header-model-ignored"),
    ],
)
async def test_header_and_rewrite_rule_order(
    rule_for: str, header: str | None, target: str
) -> None:
    director = with_stores([IDLE], rewrites=rewrites_for(rule_for))
    headers = dict(CHAT)
    if header is not None:
        headers["x-gateway-model-name-rewrite"] = header
    head, chunk = await run(director, headers)
    assert chunk.body is not None
    assert orjson.loads(chunk.body)["model"] == target
    assert head.set_headers["content-length"] == str(len(chunk.body))
    models = {"model_name": "m", "target_model_name": target, "priority": "0"}
    assert (
        director.metrics.registry.get_sample_value("inference_objective_request_total", models) == 1
    )
    assert decisions(director, target) == (1 if rule_for == "m" else None)


async def test_a_rewritten_model_is_written_back_in_the_response() -> None:
    director = with_stores([IDLE], rewrites=rewrites_for("m"))
    stream = Stream(build_exchanges(director)(StreamInfo(span=None)), DUPLEX, DUPLEX)
    await stream.handle(messages.request_headers(CHAT, end_of_stream=False))
    await stream.handle(messages.request_body(BODY, end_of_stream=True))
    await stream.handle(messages.response_headers({":status": "200"}))
    answer = b'{"model":"canary","choices":[]}'
    views = messages.describe_all(
        await stream.handle(messages.response_body(answer, end_of_stream=True))
    )
    assert messages.streamed_body(views) == b'{"model":"m","choices":[]}'


async def test_rules_need_a_parser_that_reads_the_model() -> None:
    """Upstream rewrites only a JSON-map body; the passthrough parser's model is unknown ("")."""
    director = with_stores([IDLE], rewrites=rewrites_for(), parser=PassthroughParser())
    head, chunk = await run(director)
    assert chunk.body == BODY
    assert "content-length" not in head.set_headers
    registry = director.metrics.registry
    assert not registry.get_sample_value(
        "inference_extension_model_rewrite_decisions_total",
        {"model_rewrite_name": "canary", "model_name": "", "target_model": "canary"},
    )


def test_explain_picks_the_rule_but_counts_no_decision() -> None:
    director = with_stores([IDLE], rewrites=rewrites_for("m"))
    facts = director.read(read_control_headers(CHAT), CHAT[":path"], CHAT, BODY, dry_run=True)
    assert (facts.incoming_model, facts.target_model) == ("m", "canary")
    assert decisions(director, "canary") is None
    director.read(read_control_headers(CHAT), CHAT[":path"], CHAT, BODY)
    assert decisions(director, "canary") == 1


@pytest.mark.parametrize(
    ("pool", "shed"),
    [
        pytest.param("pool", True, id="our-pool-priority-minus-1-shed"),
        pytest.param("other", False, id="other-pool-ignored-priority-0-admitted"),
    ],
)
async def test_an_inference_objective_makes_a_request_sheddable(pool: str, shed: bool) -> None:
    objectives = ObjectiveStore("pool")
    objectives.reconcile("ns/batch", {
        "metadata": {"name": "batch", "namespace": "ns"},
        "spec": {"priority": -1, "poolRef": {"group": "inference.networking.k8s.io",
                                             "name": pool}},
    })  # fmt: skip
    director = with_stores([SATURATED], objectives=objectives)
    headers = {**CHAT, "x-gateway-inference-objective": "batch"}
    if shed:
        assert await error_of(director, headers=headers) == (
            429,
            "inference error: ResourceExhausted - system saturated, sheddable request dropped",
        )
        return
    assert DEST in (await run(director, headers))[0].set_headers
    labels = {"model_name": "m", "target_model_name": "m", "priority": "0"}
    registry = director.metrics.registry
    assert registry.get_sample_value("inference_objective_request_total", labels) == 1
