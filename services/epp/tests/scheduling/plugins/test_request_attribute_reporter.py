"""`request-attribute-reporter`: CEL over the usage, as Envoy dynamic metadata at the end."""

from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from igw.epp.framework import Response
from igw.epp.framework.parsing import Usage
from igw.epp.scheduling.plugins import RequestAttributeReporter
from igw.epp.scheduling.plugins.request_attribute_reporter import (
    AttributeKeyParams,
    AttributeParams,
    usage_variables,
)
from igw.epp.testing.builders import request

USAGE = Usage(prompt_tokens=5, completion_tokens=7, total_tokens=12, cached_tokens=3)
COST = "x-gateway-inference-request-cost"


def reporter(*attributes: tuple[str, str, str] | tuple[str, str]) -> RequestAttributeReporter:
    """Attributes as (name, expression[, condition]), in namespace envoy.lb."""
    return RequestAttributeReporter(
        "cost",
        [AttributeParams(AttributeKeyParams(a[0]), a[1], *a[2:]) for a in attributes],
    )


def at_end(plugin: RequestAttributeReporter, usage: Usage | None = USAGE) -> dict[str, Any]:
    response = Response("r1", {}, end_of_stream=True, usage=usage)
    plugin.response_body(request(), response, None)
    return response.dynamic_metadata


@pytest.mark.parametrize(
    ("expression", "condition", "expected"),
    [
        pytest.param("usage.prompt_tokens + usage.completion_tokens", "", 12, id="sum"),
        # Doubles as upstream: a fractional result is truncated to a whole number.
        pytest.param("usage.completion_tokens * 1.5", "", 10, id="truncated-double"),
        pytest.param("int(usage.total_tokens) * 2", "", 24, id="int-arithmetic"),
        pytest.param("usage.prompt_token_details.cached_tokens", "", 3, id="cached-upstream"),
        pytest.param("usage.prompt_tokens_details.cached_tokens", "", 3, id="cached-openai"),
        pytest.param("usage.total_tokens", "usage.completion_tokens > 5.0", 12, id="condition-met"),
    ],
)
def test_value_is_reported_in_envoy_lb(expression: str, condition: str, expected: int) -> None:
    assert at_end(reporter((COST, expression, condition))) == {"envoy.lb": {COST: expected}}


@pytest.mark.parametrize(
    ("expression", "condition"),
    [
        pytest.param("usage.total_tokens", "usage.completion_tokens > 100.0", id="condition-unmet"),
        pytest.param("usage.total_tokens - usage.total_tokens", "", id="zero-as-upstream"),
    ],
)
def test_nothing_is_reported(expression: str, condition: str) -> None:
    assert at_end(reporter((COST, expression, condition))) == {}


@pytest.mark.parametrize(
    ("expression", "condition", "reason"),
    [
        pytest.param("usage.total_tokens * 2", "", "TypeError", id="int-times-double"),
        pytest.param("usage.nothing_here", "", "KeyError", id="missing-field"),
        pytest.param("usage.total_tokens / 0.0 > 1.0 ? 1 : 0", "", "", id="no-error-inf-compare"),
        pytest.param("'a string'", "", "not a number", id="string-result"),
        pytest.param("usage.total_tokens > 1.0", "", "not a number", id="bool-result"),
        pytest.param("usage.total_tokens / 0.0", "", "not a number", id="infinite"),
        pytest.param(
            "usage.total_tokens", "usage.total_tokens", "not a bool", id="number-condition"
        ),
    ],
)
def test_a_failing_attribute_is_logged_and_skipped_and_others_still_report(
    expression: str, condition: str, reason: str
) -> None:
    plugin = reporter(("bad", expression, condition), (COST, "usage.total_tokens"))
    with capture_logs() as logs:
        metadata = at_end(plugin)
    if not reason:  # a valid expression that happens to give 1: reported, nothing logged
        assert metadata == {"envoy.lb": {"bad": 1, COST: 12}}
        assert logs == []
        return
    assert metadata == {"envoy.lb": {COST: 12}}
    [log] = logs
    assert (log["event"], log["attribute"], log["request_id"]) == (
        "request_attribute_skipped", "bad", "req-0",
    )  # fmt: skip
    assert reason in log["reason"]


def test_only_the_end_of_stream_with_usage_reports() -> None:
    plugin = reporter((COST, "usage.total_tokens"))
    chunk = Response("r1", {}, start_of_stream=True, usage=USAGE)
    plugin.response_body(request(), chunk, None)
    assert chunk.dynamic_metadata == {}
    assert at_end(plugin, usage=None) == {}


def test_namespaces_and_several_attributes() -> None:
    plugin = RequestAttributeReporter(
        "cost",
        [
            AttributeParams(AttributeKeyParams("in", "acme.billing"), "usage.prompt_tokens"),
            AttributeParams(AttributeKeyParams("out", ""), "usage.completion_tokens"),
        ],
    )
    assert at_end(plugin) == {"acme.billing": {"in": 5}, "envoy.lb": {"out": 7}}


def test_usage_variables_follow_upstreams_shape() -> None:
    assert usage_variables(Usage(1, 2, 3)) == {
        "prompt_tokens": 1.0, "completion_tokens": 2.0, "total_tokens": 3.0,
    }  # fmt: skip


def test_compile_errors_are_raised_at_construction() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"attributes\[1\]\.condition"):
        reporter((COST, "usage.total_tokens"), (COST, "usage.total_tokens", "&&"))
