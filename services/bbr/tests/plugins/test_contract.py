"""The request-plugin contract (STYLE.md §25), checked for every registered BBR plugin type.

A new plugin type is checked here for free once it has an entry in `MINIMAL_CONFIGS`; a type
without one fails `test_every_registered_type_has_a_minimal_config`, so it cannot slip through.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from igw.bbr.adapters import AdapterIndex
from igw.bbr.metrics import BbrMetrics
from igw.bbr.plugins import Mutations, PluginHandle, RequestPlugin
from igw.bbr.registry import PluginRegistry, PluginSpec


@dataclass(frozen=True)
class MinimalConfig:
    """The smallest valid parameters of a plugin type, and the one header it may set."""

    header: str
    params: Mapping[str, Any] = field(default_factory=dict)


MINIMAL_CONFIGS: Mapping[str, MinimalConfig] = {
    "body-field-to-header": MinimalConfig(
        header="x-gateway-model-name",
        params={"fieldName": "model", "headerName": "X-Gateway-Model-Name"},
    ),
    "base-model-to-header": MinimalConfig(header="x-gateway-base-model-name"),
}

REGISTERED = PluginRegistry.builtin().types()

# Values a client may put in any field: none of them may make a plugin raise.
FIELD_VALUES = [
    pytest.param(b'"sql-lora"', id="adapter-name"),
    pytest.param(b'"base-model"', id="base-name"),
    pytest.param(b'"unknown"', id="unknown-name"),
    pytest.param(b'""', id="empty-string"),
    pytest.param(b"0", id="zero"),
    pytest.param(b"-1.5e3", id="float"),
    pytest.param(b"false", id="bool"),
    pytest.param(b"[]", id="empty-array"),
    pytest.param(b'{"nested": [1, {"deep": null}]}', id="object"),
]

_KEBAB_HEADER_KIND = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*-header$")
# RFC 9110 field-value characters: visible ASCII, space, tab and obs-text; never CR, LF or NUL.
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\U0010ffff]*$")


def minimal(type_name: str) -> MinimalConfig:
    config = MINIMAL_CONFIGS.get(type_name)
    if config is None:
        pytest.fail(f"plugin type {type_name!r} has no entry in MINIMAL_CONFIGS: add one")
    return config


def build(type_name: str, name: str = "under-test") -> RequestPlugin:
    index = AdapterIndex()
    index.reconcile("default/base", {"baseModel": "base-model", "adapters": "[sql-lora]"})
    handle = PluginHandle(adapters=index, metrics=BbrMetrics())
    spec = PluginSpec(type_name, name, minimal(type_name).params)
    [plugin] = PluginRegistry.builtin().build([spec], handle)
    return plugin


def run(plugin: RequestPlugin, fields: Mapping[str, msgspec.Raw]) -> Mutations:
    out = Mutations()
    # Read-only inputs: a plugin must not change what later plugins see.
    plugin.process_request(
        types.MappingProxyType(dict(fields)),
        types.MappingProxyType({"x-gateway-model-name": "client-sent", ":path": "/v1/x"}),
        out,
    )
    return out


def test_every_registered_type_has_a_minimal_config() -> None:
    missing = sorted(set(REGISTERED) - set(MINIMAL_CONFIGS))
    assert missing == [], f"add these plugin types to MINIMAL_CONFIGS: {missing}"


def test_every_minimal_config_names_a_registered_type() -> None:
    stale = sorted(set(MINIMAL_CONFIGS) - set(REGISTERED))
    assert stale == [], f"MINIMAL_CONFIGS names types nobody registers: {stale}"


@pytest.mark.parametrize("type_name", REGISTERED)
def test_type_name_is_kebab_case_and_ends_with_its_kind(type_name: str) -> None:
    assert _KEBAB_HEADER_KIND.match(type_name), type_name


@pytest.mark.parametrize("type_name", REGISTERED)
def test_from_config_builds_an_instance_with_the_given_name(type_name: str) -> None:
    plugin = build(type_name, name="my-instance")
    assert plugin.name == "my-instance"
    assert type(plugin).type_name == type_name


@pytest.mark.parametrize("type_name", REGISTERED)
def test_declares_the_body_fields_it_reads(type_name: str) -> None:
    fields = build(type_name).fields
    assert isinstance(fields, tuple)
    assert fields
    assert all(isinstance(f, str) and f for f in fields), fields


@pytest.mark.parametrize("type_name", REGISTERED)
def test_unknown_params_are_rejected(type_name: str) -> None:
    # A misspelt parameter must fail start-up, not silently fall back to a default.
    params = {**minimal(type_name).params, "surelyNotAParam": 1}
    handle = PluginHandle(adapters=AdapterIndex(), metrics=BbrMetrics())
    with pytest.raises(ValueError, match="under-test"):
        PluginRegistry.builtin().build([PluginSpec(type_name, "under-test", params)], handle)


@pytest.mark.parametrize("type_name", REGISTERED)
def test_without_its_fields_it_sets_at_most_its_own_header(type_name: str) -> None:
    out = run(build(type_name), {})
    assert set(out.set) <= {minimal(type_name).header}
    assert out.remove == []


@pytest.mark.parametrize("value", FIELD_VALUES)
@pytest.mark.parametrize("type_name", REGISTERED)
def test_any_field_value_sets_only_its_own_header_with_a_valid_value(
    type_name: str, value: bytes
) -> None:
    plugin = build(type_name)
    out = run(plugin, dict.fromkeys(plugin.fields, msgspec.Raw(value)))
    assert set(out.set) <= {minimal(type_name).header}
    assert out.remove == []
    for header_value in out.set.values():
        assert _HEADER_VALUE.match(header_value), header_value


@pytest.mark.parametrize("type_name", REGISTERED)
def test_sets_its_header_for_a_model_name_and_is_deterministic(type_name: str) -> None:
    plugin = build(type_name)
    fields = dict.fromkeys(plugin.fields, msgspec.Raw(b'"sql-lora"'))
    first, second = run(plugin, fields), run(plugin, fields)
    assert list(first.set) == [minimal(type_name).header]
    assert first.set == second.set
