"""The Director with the Kubernetes-fed stores: InferenceModelRewrite rules against the
rewrite header, written back in the response, and an InferenceObjective's priority shedding."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from igw.common.envoy import BodyMode
from igw.common.extproc import Stream, StreamInfo
from igw.common.testing import messages
from igw.epp.parsers import PassthroughParser
from igw.epp.requestpath import Director, ModelRewriteStore, ObjectiveStore
from igw.epp.requestpath.headers import read_control_headers
from igw.epp.testing.builders import endpoint, seeded
from igw.epp.testing.requestpath import (
    CHAT_BODY,
    CHAT_HEADERS,
    build_director,
    build_exchanges,
    request_error,
    run_request,
)

CHAT = CHAT_HEADERS
BODY = CHAT_BODY
IDLE = endpoint("pod-1-rank-0", address="10.0.0.2")
SATURATED = endpoint("pod-0-rank-0", waiting=10)
DEST = "x-gateway-destination-endpoint"
DUPLEX = BodyMode.FULL_DUPLEX_STREAMED
run = run_request
error_of = request_error


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
    director = build_director([IDLE], rewrites=rewrites_for(rule_for))
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
    director = build_director([IDLE], rewrites=rewrites_for("m"))
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
    director = build_director([IDLE], rewrites=rewrites_for(), parser=PassthroughParser())
    head, chunk = await run(director)
    assert chunk.body == BODY
    assert "content-length" not in head.set_headers
    registry = director.metrics.registry
    assert not registry.get_sample_value(
        "inference_extension_model_rewrite_decisions_total",
        {"model_rewrite_name": "canary", "model_name": "", "target_model": "canary"},
    )


def test_explain_picks_the_rule_but_counts_no_decision() -> None:
    director = build_director([IDLE], rewrites=rewrites_for("m"))
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
    director = build_director([SATURATED], objectives=objectives)
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
