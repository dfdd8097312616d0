"""Loading EndpointPickerConfig: defaults, phases, refusals and field-path errors."""

from pathlib import Path

import pytest

from igw.epp.config import ConfigError, load_config, load_config_file
from igw.epp.datalayer import CoreMetricsExtractor
from igw.epp.framework import PluginHandle, kinds
from igw.epp.parsers import OpenAIParser
from igw.epp.scheduling.plugins import (
    ApproxPrefixCacheProducer,
    MaxScorePicker,
    SingleProfileHandler,
    UtilizationDetector,
)
from igw.epp.testing.builders import seeded

HEAD = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"

UPSTREAM_EXAMPLE = (
    HEAD
    + """\
featureGates: ["flowControl"]
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- name: prefix-producer
  type: approx-prefix-cache-producer
  parameters: {autoTune: true, blockSizeTokens: 16, maxPrefixBlocksToMatch: 256,
    lruCapacityPerServer: 31250}
- type: max-score-picker
  parameters: {maxNumOfEndpoints: 1}
- type: utilization-detector
  parameters: {queueDepthThreshold: 5, kvCacheUtilThreshold: 0.8}
- type: metrics-data-source
  parameters: {scheme: http, path: /metrics, insecureSkipVerify: true}
- type: core-metrics-extractor
  parameters: {defaultEngine: vllm}
- type: round-robin-fairness-policy
schedulingProfiles:
- name: default
  plugins:
  - {pluginRef: queue-scorer, weight: 2}
  - {pluginRef: kv-cache-utilization-scorer, weight: 2}
  - {pluginRef: prefix-cache-scorer, weight: 3}
  - {pluginRef: max-score-picker}
saturationDetector: {pluginRef: utilization-detector}
dataLayer:
  sources:
  - pluginRef: metrics-data-source
    extractors: [{pluginRef: core-metrics-extractor}]
parser: {pluginRef: openai-parser}
flowControl:
  defaultRequestTTL: 60s
  priorityBands:
  - {priority: 0, maxBytes: 1Gi, fairnessPolicyRef: round-robin-fairness-policy,
     orderingPolicyRef: fcfs-ordering-policy}
"""
)


def weights(config_text: str | None) -> dict[str, float]:
    [profile] = load_config(config_text).scheduler.profiles.values()
    return {w.scorer.type_name: w.weight for w in profile.scorers}


def test_builtin_default_is_upstreams() -> None:
    config = load_config()
    [(name, profile)] = config.scheduler.profiles.items()
    assert name == "default"
    assert weights(None) == {
        "queue-scorer": 2.0,
        "kv-cache-utilization-scorer": 2.0,
        "prefix-cache-scorer": 3.0,
    }
    assert isinstance(profile.picker, MaxScorePicker)
    assert profile.picker.max_endpoints == 1
    assert isinstance(config.scheduler.handler, SingleProfileHandler)
    assert isinstance(config.saturation_detector, UtilizationDetector)
    assert isinstance(config.parser, OpenAIParser)
    assert config.data_layer.source is config.plugins["metrics-data-source"]
    assert config.data_layer.extractor is config.plugins["core-metrics-extractor"]
    assert [type(p) for p in config.request_control.producers] == [ApproxPrefixCacheProducer]
    assert config.feature_gates == frozenset()
    assert not config.flow_control.enabled


def test_upstream_example_loads() -> None:
    config = load_config(UPSTREAM_EXAMPLE)
    assert weights(UPSTREAM_EXAMPLE) == weights(None)
    producers = config.request_control.producers
    assert [p.name for p in producers] == ["prefix-producer"]  # no second, auto-created one
    fc = config.flow_control
    assert fc.enabled
    assert fc.default_request_ttl == 60.0
    assert fc.bands[0].max_bytes == 2**30
    assert fc.bands[0].fairness_policy == "round-robin-fairness-policy"
    extractor = config.data_layer.extractor
    assert isinstance(extractor, CoreMetricsExtractor)
    assert extractor.default_engine == "vllm"


def test_flow_control_eviction_and_weighted_fairness_load() -> None:
    config = load_config(
        HEAD + "featureGates: [flowControl]\n"
        "plugins: [{name: wf, type: weighted-fair-fairness-policy, "
        "parameters: {weights: {tenant-a: 3, tenant-b: 1}, defaultWeight: 2}}, "
        "{type: slo-deadline-ordering-policy}]\n"
        "flowControl: {eviction: {starvationThreshold: 500ms}, defaultPriorityBand: "
        "{fairnessPolicyRef: wf, orderingPolicyRef: slo-deadline-ordering-policy}}\n"
    )
    fc = config.flow_control
    assert fc.eviction is not None
    assert (fc.eviction.starvation_threshold_s, fc.eviction.min_interval_s) == (0.5, 0.1)
    assert fc.default_band.fairness_policy == "wf"
    assert fc.default_band.ordering_policy == "slo-deadline-ordering-policy"
    assert load_config(HEAD + "flowControl: {}\n").flow_control.eviction is None


def test_flow_control_counts_are_kubernetes_quantities_as_upstream() -> None:
    """Upstream types maxRequests as a resource.Quantity, like maxBytes: `1k` is 1000."""
    fc = load_config(
        HEAD + "featureGates: [flowControl]\n"
        "flowControl: {maxRequests: 1k, maxBytes: 1Gi, "
        "defaultPriorityBand: {maxRequests: '250'}, "
        "priorityBands: [{priority: 1, maxRequests: 40}]}\n"
    ).flow_control
    assert (fc.max_requests, fc.max_bytes) == (1000, 2**30)
    assert fc.default_band.max_requests == 250
    assert fc.bands[0].max_requests == 40
    with pytest.raises(ConfigError, match=r"flowControl\.maxRequests"):
        load_config(HEAD + "flowControl: {maxRequests: many}\n")


def test_loads_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "epp.yaml"
    path.write_text(UPSTREAM_EXAMPLE)
    assert load_config_file(path).flow_control.enabled
    with pytest.raises(ConfigError, match="cannot read"):
        load_config_file(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        pytest.param(
            HEAD + "plugins: [{type: queue-scorer}]\nschedulingProfiles:\n- name: p\n  plugins:\n"
            "  - {pluginRef: queue-scorer}\n  - {pluginRef: queue-scorer, weigth: 2}\n",
            "schedulingProfiles[0].plugins[1].weigth",
            "unknown field",
            id="unknown-field-path",
        ),
        pytest.param(HEAD + "plugins: [{name: x}]\n", "plugins[0].type", "missing", id="no-type"),
        pytest.param(
            HEAD + "plugins: [{type: queue-scorer, parameters: {foo: 1}}]\n",
            "plugins[0].parameters.foo",
            "unknown field",
            id="unknown-parameter",
        ),
        pytest.param(
            HEAD + "plugins: [{type: token-load-scorer, parameters: {queueThresholdTokens: x}}]\n",
            "plugins[0].parameters.queueThresholdTokens",
            "expected `int`",
            id="wrong-param-type",
        ),
        pytest.param(
            HEAD + "plugins: [{type: queue-scorer}, {type: queue-scorer}]\n",
            "plugins[1].name",
            "used twice",
            id="duplicate-name",
        ),
        pytest.param(
            HEAD + "plugins: [{type: fancy-scorer}]\n",
            "plugins[0].type",
            "known: approx-prefix-cache-producer",
            id="unknown-type",
        ),
        pytest.param(
            HEAD + "featureGates: [warpDrive]\n",
            "featureGates[0]",
            "unknown feature gate",
            id="unknown-gate",
        ),
        pytest.param(
            "apiVersion: v1\nkind: EndpointPickerConfig\n",
            "apiVersion",
            "must be",
            id="wrong-api-version",
        ),
        pytest.param(
            HEAD + "schedulingProfiles: [{name: p, plugins: [{pluginRef: nope}]}]\n",
            "schedulingProfiles[0].plugins[0].pluginRef",
            "no plugin named 'nope'",
            id="dangling-ref",
        ),
        pytest.param(
            HEAD + "plugins: [{type: random-picker}, {type: max-score-picker}]\n"
            "schedulingProfiles: [{name: p, plugins: [{pluginRef: random-picker}, "
            "{pluginRef: max-score-picker}]}]\n",
            "schedulingProfiles[0].plugins",
            "at most one",
            id="two-pickers",
        ),
        pytest.param(
            HEAD + "plugins: [{type: single-profile-handler}]\n"
            "schedulingProfiles: [{name: a}, {name: b}]\n",
            "schedulingProfiles",
            "supports one profile",
            id="single-handler-two-profiles",
        ),
        pytest.param(
            HEAD + "schedulingProfiles: [{name: a}, {name: b}]\n",
            "plugins",
            "need a profile handler",
            id="two-profiles-no-handler",
        ),
        pytest.param(
            HEAD + "plugins: [{type: single-profile-handler}, "
            "{name: h2, type: single-profile-handler}]\n",
            "plugins",
            "only one profile handler",
            id="two-handlers",
        ),
        pytest.param(
            HEAD
            + "saturationDetector: {pluginRef: queue-scorer}\nplugins: [{type: queue-scorer}]\n",
            "saturationDetector.pluginRef",
            "not a saturation-detector",
            id="detector-wrong-kind",
        ),
        pytest.param(
            HEAD + "parser: {pluginRef: xml-parser}\n",
            "parser.pluginRef",
            "no plugin named",
            id="unknown-parser",
        ),
        pytest.param(
            HEAD + "flowControl: {priorityBands: [{priority: 0, fairnessPolicyRef: "
            "round-robin-fairness-policy}]}\n",
            "flowControl.priorityBands[0].fairnessPolicyRef",
            "no plugin named",
            id="policy-not-instantiated",
        ),
        pytest.param(
            HEAD + "flowControl: {maxBytes: lots}\n",
            "flowControl.maxBytes",
            "invalid quantity",
            id="bad-quantity",
        ),
        pytest.param(
            HEAD + "plugins: [{type: prefix-cache-scorer, parameters: {blockSizeTokens: 8}}, "
            "{type: approx-prefix-cache-producer}]\n",
            "plugins",
            "set them on the producer",
            id="scorer-params-with-explicit-producer",
        ),
        pytest.param(
            HEAD + "flowControl: {eviction: {starvationThreshold: 1s, bogus: 1}}\n",
            "flowControl.eviction.bogus",
            "unknown field",
            id="unknown-eviction-field",
        ),
        pytest.param(
            HEAD + "flowControl: {eviction: {starvationThreshold: 0s}}\n",
            "flowControl.eviction.starvationThreshold",
            "must be positive",
            id="eviction-threshold-zero",
        ),
        pytest.param(
            HEAD + "plugins: [{type: weighted-fair-fairness-policy, "
            "parameters: {weights: {a: 1}, weight: 2}}]\n",
            "plugins[0].parameters.weight",
            "unknown field",
            id="weighted-fair-unknown-param",
        ),
        pytest.param(
            HEAD + "plugins: [{type: weighted-fair-fairness-policy, "
            "parameters: {weights: {a: -1}}}]\n",
            "plugins[0].parameters",
            "must be a positive number",
            id="weighted-fair-negative-weight",
        ),
        pytest.param(HEAD + "plugins: [", "", "invalid YAML", id="bad-yaml"),
    ],
)
def test_errors_name_the_field(text: str, path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(text)
    assert info.value.path == path


@pytest.mark.parametrize(
    "type_name",
    [
        "latency-scorer",
        "predicted-latency-producer",
        "slo-headroom-tier-filter",
        "k8s-notification-source",
        "vllmgrpc-parser",
    ],
)
def test_experimental_types_are_refused_by_name(type_name: str) -> None:
    with pytest.raises(ConfigError, match="experimental or unsupported in igw") as info:
        load_config(HEAD + f"plugins: [{{name: mine, type: {type_name}}}]\n")
    assert "'mine'" in str(info.value)
    assert info.value.path == "plugins[0].type"


def test_no_profiles_means_one_default_profile_with_everything() -> None:
    config = load_config(
        HEAD + "plugins: [{type: header-based-testing-filter}, {type: lora-affinity-scorer}, "
        "{type: random-picker}]\n"
    )
    [(name, profile)] = config.scheduler.profiles.items()
    assert name == "default"
    assert [f.type_name for f in profile.filters] == ["header-based-testing-filter"]
    assert [(w.scorer.type_name, w.weight) for w in profile.scorers] == [
        ("lora-affinity-scorer", 1.0)
    ]
    assert profile.picker.type_name == "random-picker"


def test_profile_without_picker_gets_the_first_configured_one() -> None:
    config = load_config(
        HEAD + "plugins: [{type: queue-scorer}, {type: weighted-random-picker}, "
        "{name: p2, type: random-picker}]\n"
        "schedulingProfiles: [{name: a, plugins: [{pluginRef: queue-scorer}]}]\n"
    )
    assert config.scheduler.profiles["a"].picker.name == "weighted-random-picker"


def test_consumers_pull_in_their_producers_in_order() -> None:
    config = load_config(
        HEAD + "plugins: [{type: token-load-scorer}, {type: prefix-cache-affinity-filter}]\n"
    )
    assert sorted(p.type_name for p in config.request_control.producers) == [
        "approx-prefix-cache-producer",
        "inflight-load-producer",
    ]
    hooks = {p.type_name for p in config.request_control.response_complete_plugins}
    assert hooks == {"inflight-load-producer"}


def test_prefix_scorer_parameters_reach_the_auto_created_producer() -> None:
    # Upstream ignores them (§13 #8); igw forwards them on purpose.
    config = load_config(
        HEAD + "plugins: [{type: prefix-cache-scorer, parameters: {blockSizeTokens: 8}}]\n"
    )
    producer = config.plugins["approx-prefix-cache-producer"]
    assert isinstance(producer, ApproxPrefixCacheProducer)
    assert producer.block_size_tokens == 8


def test_empty_data_layer_sources_turn_collection_off() -> None:
    data_layer = load_config(HEAD + "dataLayer: {sources: []}\n").data_layer
    assert (data_layer.source, data_layer.extractor) == (None, None)


def test_the_handle_is_passed_to_plugins() -> None:
    rng = seeded(5)
    config = load_config(HEAD + "plugins: [{type: random-picker}]\n", handle=PluginHandle(rng=rng))
    picker = config.plugins["random-picker"]
    assert getattr(picker, "rng", None) is rng


def test_plugins_of_a_kind_come_typed_as_that_kind() -> None:
    config = load_config()
    scorers = config.plugins_of(kinds.SCORER)
    assert [s.type_name for s in scorers] == [
        "queue-scorer", "kv-cache-utilization-scorer", "prefix-cache-scorer",
    ]  # fmt: skip
    assert all(s.category in ("distribution", "affinity") for s in scorers)
    assert [p.name for p in config.plugins_of(kinds.PARSER)] == ["openai-parser"]
    # The saturation detector the defaults add is a filter too, though no profile uses it.
    assert [p.type_name for p in config.plugins_of(kinds.FILTER)] == ["utilization-detector"]
    assert config.scheduler.profiles["default"].filters == ()
