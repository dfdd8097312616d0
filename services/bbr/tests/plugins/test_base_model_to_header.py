"""igw.bbr.plugins.base_model_to_header: the requested model's base model as a header."""

from __future__ import annotations

from typing import Any

import pytest

from igw.bbr.adapters import AdapterIndex
from igw.bbr.metrics import BbrMetrics
from igw.bbr.plugins import BASE_MODEL_HEADER, BaseModelToHeader, Mutations, PluginHandle
from igw.common.openai import FieldDecoder

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


def adapter_index() -> AdapterIndex:
    index = AdapterIndex()
    index.reconcile("default/llama", {"baseModel": LLAMA, "adapters": "[sql-lora, chat-lora]"})
    index.reconcile("default/qwen", {"baseModel": "Qwen/Qwen3-0.6B"})
    return index


def build(index: AdapterIndex, params: dict[str, Any] | None = None) -> BaseModelToHeader:
    handle = PluginHandle(adapters=index, metrics=BbrMetrics())
    return BaseModelToHeader.from_config("base", params or {}, handle)


def run(plugin: BaseModelToHeader, body: bytes) -> dict[str, str]:
    out = Mutations()
    plugin.process_request(FieldDecoder(plugin.fields).decode(body), {}, out)
    assert out.remove == []
    return out.set


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(b'{"model": "sql-lora"}', {BASE_MODEL_HEADER: LLAMA}, id="adapter-to-base"),
        pytest.param(b'{"model": "chat-lora"}', {BASE_MODEL_HEADER: LLAMA}, id="second-adapter"),
        pytest.param(
            b'{"model": "meta-llama/Llama-3.1-8B-Instruct"}',
            {BASE_MODEL_HEADER: LLAMA},
            id="base-to-itself",
        ),
        pytest.param(
            b'{"model": "Qwen/Qwen3-0.6B"}',
            {BASE_MODEL_HEADER: "Qwen/Qwen3-0.6B"},
            id="base-without-adapters-to-itself",
        ),
        # Upstream sets the header to "" so a route matching a base model never matches by chance.
        pytest.param(b'{"model": "gpt-4"}', {BASE_MODEL_HEADER: ""}, id="unknown-is-empty"),
        pytest.param(b'{"model": "SQL-LORA"}', {BASE_MODEL_HEADER: ""}, id="case-sensitive"),
        pytest.param(b'{"prompt": "hi"}', {}, id="no-model-no-header"),
        pytest.param(b'{"model": null}', {}, id="null-model-no-header"),
    ],
)
def test_base_model_header(body: bytes, headers: dict[str, str]) -> None:
    assert run(build(adapter_index()), body) == headers


def test_header_follows_the_index_as_it_changes() -> None:
    index = adapter_index()
    plugin = build(index)
    body = b'{"model": "sql-lora"}'
    assert run(plugin, body) == {BASE_MODEL_HEADER: LLAMA}
    index.reconcile("default/llama", {"baseModel": "other-base", "adapters": "[sql-lora]"})
    assert run(plugin, body) == {BASE_MODEL_HEADER: "other-base"}
    index.reconcile("default/llama", None)
    assert run(plugin, body) == {BASE_MODEL_HEADER: ""}


def test_declares_the_model_field() -> None:
    plugin = build(AdapterIndex())
    assert (plugin.name, plugin.fields) == ("base", ("model",))


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"headerName": "x-base"}, id="header-name"),
        pytest.param({"anything": 1}, id="unknown"),
    ],
)
def test_rejects_params(params: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"plugin 'base' \(base-model-to-header\) takes no param"):
        build(AdapterIndex(), params)
