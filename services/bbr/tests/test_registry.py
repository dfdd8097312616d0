"""igw.bbr.registry: the `--plugin type:name[:json]` flag and building plugins from it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec
import pytest

from igw.bbr.adapters import AdapterIndex
from igw.bbr.metrics import BbrMetrics
from igw.bbr.plugins import BaseModelToHeader, BodyFieldToHeader, Mutations, PluginHandle
from igw.bbr.registry import DEFAULT_PLUGINS, PluginRegistry, PluginSpec, parse_plugin_flag


def handle() -> PluginHandle:
    return PluginHandle(adapters=AdapterIndex(), metrics=BbrMetrics())


class ExtraHeader:
    """An out-of-tree plugin, as an entry point would supply it."""

    type_name: ClassVar[str] = "extra-header"
    fields = ("model",)

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],  # noqa: ARG003 - protocol
        handle: PluginHandle,  # noqa: ARG003 - protocol
    ) -> ExtraHeader:
        return cls(name)

    def process_request(
        self,
        fields: Mapping[str, msgspec.Raw],  # noqa: ARG002 - protocol
        headers: Mapping[str, str],  # noqa: ARG002 - protocol
        out: Mutations,
    ) -> None:
        out.set_header("x-extra", self.name)


@pytest.mark.parametrize(
    ("flag", "spec"),
    [
        pytest.param(
            "base-model-to-header:base",
            PluginSpec("base-model-to-header", "base", {}),
            id="type-and-name",
        ),
        pytest.param(
            "base-model-to-header:base:",
            PluginSpec("base-model-to-header", "base", {}),
            id="empty-json",
        ),
        pytest.param(
            'body-field-to-header:model:{"fieldName":"model","headerName":"X-Gateway-Model-Name"}',
            PluginSpec(
                "body-field-to-header",
                "model",
                {"fieldName": "model", "headerName": "X-Gateway-Model-Name"},
            ),
            id="with-json",
        ),
        pytest.param(
            'body-field-to-header:tenant:{"fieldName": "a:b", "headerName": "x:y"}',
            PluginSpec("body-field-to-header", "tenant", {"fieldName": "a:b", "headerName": "x:y"}),
            id="json-with-colons",
        ),
    ],
)
def test_parse_plugin_flag(flag: str, spec: PluginSpec) -> None:
    assert parse_plugin_flag(flag) == spec


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        pytest.param("base-model-to-header", "expected TYPE:NAME or TYPE:NAME:JSON", id="no-name"),
        pytest.param("base-model-to-header:", "expected TYPE:NAME", id="empty-name"),
        pytest.param(":base", "expected TYPE:NAME", id="empty-type"),
        pytest.param("", "expected TYPE:NAME", id="empty"),
        pytest.param(
            "body-field-to-header:m:{fieldName: model}", "parameters are not valid JSON", id="bad"
        ),
        pytest.param(
            'body-field-to-header:m:["model"]', "parameters must be a JSON object", id="array"
        ),
        pytest.param('body-field-to-header:m:"x"', "must be a JSON object", id="string"),
        pytest.param("body-field-to-header:m:null", "must be a JSON object", id="null"),
    ],
)
def test_parse_plugin_flag_errors_name_the_flag(flag: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_plugin_flag(flag)
    assert f"--plugin {flag!r}" in str(info.value)


def test_defaults_are_upstreams() -> None:
    plugins = PluginRegistry.builtin().build(DEFAULT_PLUGINS, handle())
    assert [(type(p), p.name) for p in plugins] == [
        (BodyFieldToHeader, "body-field-to-header"),
        (BaseModelToHeader, "base-model-to-header"),
    ]
    copier = plugins[0]
    assert isinstance(copier, BodyFieldToHeader)
    assert (copier.field_name, copier.header_name) == ("model", "x-gateway-model-name")


def test_builtin_types() -> None:
    registry = PluginRegistry.builtin(entry_points=False)
    assert registry.types() == ["base-model-to-header", "body-field-to-header"]


def test_build_keeps_configuration_order() -> None:
    specs = [
        PluginSpec("base-model-to-header", "first"),
        parse_plugin_flag('body-field-to-header:second:{"fieldName":"user","headerName":"x-u"}'),
        PluginSpec("base-model-to-header", "third"),
    ]
    plugins = PluginRegistry.builtin().build(specs, handle())
    assert [p.name for p in plugins] == ["first", "second", "third"]


def test_registered_out_of_tree_type_is_buildable() -> None:
    registry = PluginRegistry([BodyFieldToHeader, ExtraHeader])
    [plugin] = registry.build([PluginSpec("extra-header", "x")], handle())
    assert isinstance(plugin, ExtraHeader)
    assert registry.types() == ["body-field-to-header", "extra-header"]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        pytest.param(
            [PluginSpec("model-to-header", "m")],
            "unknown BBR plugin type 'model-to-header' "
            r"\(known: base-model-to-header, body-field-to-header\)",
            id="unknown-type-lists-known",
        ),
        pytest.param(
            [PluginSpec("base-model-to-header", "p"), PluginSpec("base-model-to-header", "p")],
            "BBR plugin name 'p' is used twice",
            id="duplicate-name-same-type",
        ),
        pytest.param(
            [
                PluginSpec("base-model-to-header", "p"),
                PluginSpec("body-field-to-header", "p", {"fieldName": "a", "headerName": "b"}),
            ],
            "BBR plugin name 'p' is used twice",
            id="duplicate-name-other-type",
        ),
        pytest.param(
            [PluginSpec("body-field-to-header", "m", {"fieldName": "model"})],
            r"plugin 'm' \(body-field-to-header\): .*missing required field `headerName`",
            id="missing-header-name",
        ),
        pytest.param(
            [
                PluginSpec(
                    "body-field-to-header", "m", {"fieldName": "a", "headerName": "b", "x": 1}
                )
            ],
            r"plugin 'm' \(body-field-to-header\): .*unknown field `x`",
            id="unknown-param",
        ),
        pytest.param(
            [PluginSpec("base-model-to-header", "b", {"x": 1})],
            r"plugin 'b' \(base-model-to-header\) takes no parameters",
            id="params-for-parameterless",
        ),
    ],
)
def test_build_errors_are_clear_value_errors(specs: list[PluginSpec], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        PluginRegistry.builtin(entry_points=False).build(specs, handle())
    # One clean message for the CLI: no msgspec error class leaking out.
    assert type(info.value) is ValueError


def test_registering_a_type_twice_is_refused() -> None:
    registry = PluginRegistry([BodyFieldToHeader])
    with pytest.raises(ValueError, match="'body-field-to-header' is registered twice"):
        registry.register(BodyFieldToHeader)
    with pytest.raises(ValueError, match="'extra-header' is registered twice"):
        PluginRegistry([ExtraHeader, ExtraHeader])


def test_registries_are_independent() -> None:
    mine = PluginRegistry([ExtraHeader])
    assert "extra-header" not in PluginRegistry.builtin(entry_points=False).types()
    assert mine.types() == ["extra-header"]
