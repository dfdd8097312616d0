"""The admin gRPC service end to end: a real grpc.aio server, the default config, three pods."""

from __future__ import annotations

import math

import pytest

from igw.epp.admin import AdminClient, Explanation
from igw.epp.config import EppConfig
from igw.epp.framework import ProfileExplanation
from igw.epp.testing.admin_fleet import (
    CHAT,
    StaticSource,
    chat_body,
    prefix_producer,
    seed_prefix,
)


def column(profile: ProfileExplanation, plugin: str) -> dict[str, float]:
    [scores] = [s.scores for s in profile.scorers if s.plugin == plugin]
    return dict(zip(profile.endpoints, scores, strict=True))


def primary(explanation: Explanation) -> ProfileExplanation:
    return explanation.profiles[explanation.primary_profile]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param(
            "pod-a-rank-0",
            {"waiting": 6, "running": 4, "kv": 0.7, "adapters": set(), "age": 5.0, "stale": True},
            id="older-than-the-2s-threshold-is-stale",
        ),
        pytest.param(
            "pod-b-rank-0",
            {
                "waiting": 3,
                "running": 2,
                "kv": 0.4,
                "adapters": {"food-review-1"},
                "age": 0.5,
                "stale": False,
            },
            id="adapters",
        ),
        pytest.param(
            "pod-c-rank-0",
            {"waiting": 0, "running": 1, "kv": 0.1, "adapters": set(), "age": 0.1, "stale": False},
            id="fresh",
        ),
    ],
)
async def test_list_endpoints_reports_metrics_and_staleness(
    client: AdminClient, name: str, expected: dict[str, object]
) -> None:
    inventory = await client.list_endpoints()

    [report] = [r for r in inventory.endpoints if r.endpoint.name == name]
    m = report.metrics
    assert {
        "waiting": m.waiting, "running": m.running, "kv": pytest.approx(m.kv_cache_usage),
        "adapters": m.active_models, "age": pytest.approx(report.age_s), "stale": report.stale,
    } == expected  # fmt: skip
    assert (report.endpoint.engine_type, report.endpoint.pod) == ("vllm", name[: -len("-rank-0")])
    # The default config has no in-flight tracker: counts are 0 and the answer says so.
    assert (report.in_flight.requests, inventory.in_flight_tracked) == (0, False)
    assert inventory.staleness_threshold_s == 2.0


async def test_explain_picks_the_least_loaded_pod_with_default_weights(
    client: AdminClient,
) -> None:
    explanation = await client.explain(CHAT, {}, chat_body("Is the ramen place any good?"))

    profile = primary(explanation)
    assert explanation.error is None
    assert explanation.picked == ("pod-c-rank-0",)
    assert [(s.plugin, s.plugin_type, s.weight) for s in profile.scorers] == [
        ("queue-scorer", "queue-scorer", 2.0),
        ("kv-cache-utilization-scorer", "kv-cache-utilization-scorer", 2.0),
        ("prefix-cache-scorer", "prefix-cache-scorer", 3.0),
    ]
    assert column(profile, "queue-scorer") == {
        "pod-a-rank-0": 0.0, "pod-b-rank-0": 0.5, "pod-c-rank-0": 1.0,
    }  # fmt: skip
    assert column(profile, "kv-cache-utilization-scorer") == pytest.approx(
        {"pod-a-rank-0": 0.3, "pod-b-rank-0": 0.6, "pod-c-rank-0": 0.9}
    )
    assert set(column(profile, "prefix-cache-scorer").values()) == {0.0}
    for i, _name in enumerate(profile.endpoints):
        weighted = sum(s.weight * s.scores[i] for s in profile.scorers)
        assert math.isclose(profile.totals[i], weighted)
    assert profile.totals == pytest.approx((0.6, 2.2, 3.8))


async def test_a_cached_prefix_gives_its_pod_the_lead(
    client: AdminClient, config: EppConfig, source: StaticSource
) -> None:
    seed_prefix(config, source, chat_body("Where is the best pizza?"), "pod-b-rank-0")

    explanation = await client.explain(CHAT, {}, chat_body("And the best sushi?"))

    prefix = column(primary(explanation), "prefix-cache-scorer")
    assert prefix["pod-a-rank-0"] == prefix["pod-c-rank-0"] == 0.0
    assert prefix["pod-b-rank-0"] > 0.9  # all but the last blocks of the shared system prompt
    assert explanation.picked == ("pod-b-rank-0",)


async def test_explain_changes_nothing(
    client: AdminClient, config: EppConfig, source: StaticSource
) -> None:
    """No PreRequest: explaining a request does not record its prefix for the next one."""
    seed_prefix(config, source, chat_body("Where is the best pizza?"), "pod-b-rank-0")
    index = prefix_producer(config).index
    before = {s.endpoint.name: index.endpoint_hashes(s.endpoint.name) for s in source.states}

    first = await client.explain(CHAT, {"x-request-id": "r1"}, chat_body("Any vegan options?"))
    second = await client.explain(CHAT, {"x-request-id": "r1"}, chat_body("Any vegan options?"))

    after = {s.endpoint.name: index.endpoint_hashes(s.endpoint.name) for s in source.states}
    assert first == second
    assert after == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b'{"model": "m", "messages": [', "error unmarshaling request bodyMap: ",
                     id="invalid-json"),
        pytest.param(b'{"messages": [{"role": "user", "content": "hi"}]}',
                     "model not found in request body", id="no-model"),
        pytest.param(b'{"model": "m"}',
                     "invalid chat completions request: must have valid messages field",
                     id="no-messages"),
    ],
)  # fmt: skip
async def test_a_malformed_body_reports_upstreams_400(
    client: AdminClient, body: bytes, message: str
) -> None:
    explanation = await client.explain(CHAT, {}, body)

    assert explanation.error is not None
    assert (explanation.error.status, explanation.error.code) == (400, "BadRequest")
    assert explanation.error.message.startswith(message)
    assert explanation.error.body == f"inference error: BadRequest - {explanation.error.message}"
    assert explanation.profiles == {}
    assert explanation.picked == ()
