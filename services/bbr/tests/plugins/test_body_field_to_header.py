"""igw.bbr.plugins.body_field_to_header: one body field copied into one request header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import pytest

from igw.bbr.adapters import AdapterIndex
from igw.bbr.metrics import BbrMetrics
from igw.bbr.plugins import BodyFieldToHeader, Mutations, PluginHandle
from igw.common.openai import FieldDecoder

MODEL_PARAMS = {"fieldName": "model", "headerName": "X-Gateway-Model-Name"}


def build(params: Mapping[str, Any] = MODEL_PARAMS) -> tuple[BodyFieldToHeader, BbrMetrics]:
    metrics = BbrMetrics()
    handle = PluginHandle(adapters=AdapterIndex(), metrics=metrics)
    return BodyFieldToHeader.from_config("copy", params, handle), metrics


def run(plugin: BodyFieldToHeader, body: bytes) -> dict[str, str]:
    """The headers the plugin sets for `body`, decoded the way the router decodes it."""
    out = Mutations()
    plugin.process_request(FieldDecoder(plugin.fields).decode(body), {}, out)
    assert out.remove == []
    return out.set


def counter(metrics: BbrMetrics, name: str, field: str = "model") -> float:
    value = metrics.registry.get_sample_value(name, {"field": field})
    return 0.0 if value is None else value


@pytest.mark.parametrize(
    ("body", "header"),
    [
        pytest.param(b'{"model": "llama-3"}', "llama-3", id="string-copied-as-is"),
        pytest.param(b'{"model": "caf\\u00e9 \\"q\\""}', 'café "q"', id="string-unescaped"),
        pytest.param(b'{"model": 42}', "42", id="integer"),
        pytest.param(b'{"model": 1.5}', "1.5", id="float"),
        pytest.param(b'{"model": true}', "true", id="true"),
        pytest.param(b'{"model": false}', "false", id="false"),
        pytest.param(b'{"model": {"a": 1, "b": [1, 2]}}', '{"a":1,"b":[1,2]}', id="object-compact"),
        pytest.param(b'{"model": [ "x", "y" ]}', '["x","y"]', id="array-compact"),
        pytest.param(b'{"model": {"v": 1.50e0}}', '{"v":1.50e0}', id="number-text-kept"),
        # A pretty-printed body must not put a newline into a header value.
        pytest.param(b'{"model": {\n  "a": "b c"\n}}', '{"a":"b c"}', id="pretty-printed-object"),
        pytest.param(b'{"prompt": "hi", "model": "m"}', "m", id="other-fields-ignored"),
    ],
)
def test_field_value_becomes_the_header(body: bytes, header: str) -> None:
    plugin, metrics = build()
    assert run(plugin, body) == {"x-gateway-model-name": header}
    assert counter(metrics, "bbr_body_field_not_found_total") == 0
    assert counter(metrics, "bbr_body_field_empty_total") == 0


@pytest.mark.parametrize(
    ("body", "metric"),
    [
        pytest.param(b'{"prompt": "hi"}', "bbr_body_field_not_found_total", id="missing"),
        pytest.param(b"{}", "bbr_body_field_not_found_total", id="empty-object-body"),
        pytest.param(b'{"model": null}', "bbr_body_field_not_found_total", id="null-is-missing"),
        pytest.param(b'{"model": ""}', "bbr_body_field_empty_total", id="empty-string"),
        pytest.param(b'{"model": []}', "bbr_body_field_empty_total", id="empty-array"),
        pytest.param(b'{"model": { }}', "bbr_body_field_empty_total", id="empty-object"),
    ],
)
def test_missing_or_empty_field_sets_nothing_and_is_counted(body: bytes, metric: str) -> None:
    plugin, metrics = build()
    assert run(plugin, body) == {}
    assert counter(metrics, metric) == 1
    other = {
        "bbr_body_field_not_found_total": "bbr_body_field_empty_total",
        "bbr_body_field_empty_total": "bbr_body_field_not_found_total",
    }[metric]
    assert counter(metrics, other) == 0


def test_counters_are_labelled_with_the_configured_field() -> None:
    plugin, metrics = build({"fieldName": "user", "headerName": "x-user"})
    run(plugin, b'{"model": "m"}')
    run(plugin, b'{"user": ""}')
    assert counter(metrics, "bbr_body_field_not_found_total", field="user") == 1
    assert counter(metrics, "bbr_body_field_empty_total", field="user") == 1
    assert counter(metrics, "bbr_body_field_not_found_total", field="model") == 0


@pytest.mark.parametrize(
    ("params", "body", "header"),
    [
        pytest.param(
            {"fieldName": "user", "headerName": "X-Tenant"},
            b'{"model": "m", "user": "acme"}',
            {"x-tenant": "acme"},
            id="custom-field-and-header",
        ),
        pytest.param(
            {"fieldName": "x-priority", "headerName": "x-priority"},
            b'{"x-priority": 3}',
            {"x-priority": "3"},
            id="field-name-not-an-identifier",
        ),
        pytest.param(
            {"fieldName": "model", "headerName": "X-GATEWAY-MODEL"},
            b'{"model": "m"}',
            {"x-gateway-model": "m"},
            id="header-name-lower-cased",
        ),
    ],
)
def test_configured_field_and_header(
    params: dict[str, str], body: bytes, header: dict[str, str]
) -> None:
    plugin, _ = build(params)
    assert run(plugin, body) == header


def test_declares_exactly_its_field_and_lower_cased_header() -> None:
    plugin, _ = build({"fieldName": "Model", "headerName": "X-Model"})
    assert (plugin.name, plugin.fields, plugin.header_name) == ("copy", ("Model",), "x-model")
    # JSON keys are case-sensitive: "model" is not "Model".
    assert run(plugin, b'{"model": "m"}') == {}


def test_overwrites_a_header_set_by_an_earlier_plugin() -> None:
    plugin, _ = build()
    out = Mutations()
    out.set_header("X-Gateway-Model-Name", "from-earlier-plugin")
    plugin.process_request(FieldDecoder(plugin.fields).decode(b'{"model": "m"}'), {}, out)
    assert out.set == {"x-gateway-model-name": "m"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({"fieldName": "model"}, "missing required field `headerName`", id="no-header"),
        pytest.param(
            {"headerName": "x-model"}, "missing required field `fieldName`", id="no-field"
        ),
        pytest.param({}, "missing required field", id="no-params"),
        pytest.param({**MODEL_PARAMS, "header": "x"}, "unknown field `header`", id="unknown-param"),
        pytest.param(
            {"fieldName": "model", "headerName": 7}, "Expected `str`", id="header-not-a-string"
        ),
    ],
)
def test_params_are_validated_by_name(params: dict[str, Any], message: str) -> None:
    # The registry wraps these with the plugin's name; see test_registry.
    with pytest.raises(msgspec.ValidationError, match=message):
        build(params)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"fieldName": "", "headerName": "x-model"}, id="empty-field"),
        pytest.param({"fieldName": "model", "headerName": ""}, id="empty-header"),
    ],
)
def test_empty_names_are_rejected(params: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"plugin 'copy': fieldName and headerName must not be"):
        build(params)
