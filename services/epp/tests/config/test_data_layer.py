"""The `dataLayer` section and its plugins at load time: what is refused, naming the field."""

from __future__ import annotations

import pytest

from igw.epp.config import ConfigError, load_config
from igw.epp.datalayer import CoreMetricsExtractor

HEAD = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        pytest.param(
            "plugins:\n- {name: a, type: metrics-data-source}\n"
            "- {name: b, type: metrics-data-source, parameters: {path: /other}}\n"
            "dataLayer:\n  sources:\n"
            "  - {pluginRef: a, extractors: [{pluginRef: core-metrics-extractor}]}\n"
            "  - {pluginRef: b, extractors: [{pluginRef: core-metrics-extractor}]}\n",
            "dataLayer.sources[1]", "only one data source is supported", id="two-sources",
        ),
        pytest.param(
            "dataLayer:\n  sources:\n  - {pluginRef: metrics-data-source}\n",
            "dataLayer.sources[0].extractors", "exactly one extractor", id="no-extractor",
        ),
        pytest.param(
            "plugins:\n- {name: x, type: core-metrics-extractor}\n"
            "dataLayer:\n  sources:\n  - pluginRef: metrics-data-source\n"
            "    extractors: [{pluginRef: core-metrics-extractor}, {pluginRef: x}]\n",
            "dataLayer.sources[0].extractors", "got 2", id="two-extractors",
        ),
        pytest.param(
            "plugins:\n- type: core-metrics-extractor\n  parameters:\n    engineConfigs:\n"
            "    - {name: vllm, kvUsageSpec: 'vllm:kv{a=~\"x\"}'}\n",
            "plugins[0].parameters", "kvUsageSpec", id="bad-metric-spec",
        ),
        pytest.param(
            "plugins:\n- {type: metrics-data-source, parameters: {path: metrics}}\n",
            "plugins[0].parameters", "path must start with '/'", id="relative-path",
        ),
        pytest.param(
            "plugins:\n- {type: metrics-data-source, parameters: {path: '/a b'}}\n",
            "plugins[0].parameters", "without spaces", id="path-with-space",
        ),
    ],
)  # fmt: skip
def test_what_the_data_layer_cannot_honour_is_refused(text: str, path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(HEAD + text)
    assert caught.value.path == path


def test_the_configured_extractor_is_the_one_the_data_layer_uses() -> None:
    text = "plugins:\n- type: core-metrics-extractor\n  parameters: {defaultEngine: sglang}\n"
    config = load_config(HEAD + text)
    plugin = config.plugins["core-metrics-extractor"]
    assert isinstance(plugin, CoreMetricsExtractor)
    assert plugin.default_engine == "sglang"
    assert config.data_layer.extractor is plugin
