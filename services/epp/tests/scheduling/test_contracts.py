"""Contract tests per plugin kind (STYLE §25), over every registered plugin of that kind.

A new plugin type is checked here once it has an entry in `MINIMAL_CONFIGS`; a type without one
fails `test_every_registered_type_has_a_minimal_config`.
"""

import math
import re
from collections.abc import Mapping
from typing import Any, cast

import msgspec
import pytest

from igw.epp.config import builtin_registry
from igw.epp.framework import (
    CycleState,
    Plugin,
    PluginHandle,
    ProfileResult,
    Response,
    SchedulingResult,
    kinds,
    plugin_kinds,
)
from igw.epp.framework.kinds import Kind
from igw.epp.framework.parsing import Usage
from igw.epp.framework.requestcontrol import (
    ResponseBodyProcessor,
    ResponseHeaderProcessor,
    SaturationDetector,
)
from igw.epp.framework.scheduling import Filter, Picker, Scorer
from igw.epp.testing.builders import FakeClock, endpoint, request, seeded

MINIMAL_CONFIGS: Mapping[str, Mapping[str, Any]] = {
    "single-profile-handler": {},
    "queue-scorer": {},
    "running-requests-size-scorer": {},
    "kv-cache-utilization-scorer": {},
    "lora-affinity-scorer": {},
    "prefix-cache-scorer": {},
    "token-load-scorer": {"queueThresholdTokens": 1000},
    "approx-prefix-cache-producer": {"blockSizeTokens": 4},
    "inflight-load-producer": {},
    "online-latency-producer": {"stepTokens": 128, "halfLifeSeconds": 2.0},
    "predicted-ttft-scorer": {},
    "latency-slo-admitter": {},
    "utilization-detector": {"queueDepthThreshold": 3},
    "concurrency-detector": {"maxConcurrency": 2},
    "prefix-cache-affinity-filter": {"explorationProbability": 0.5},
    "header-based-testing-filter": {},
    "destination-endpoint-served-verifier": {},
    "request-attribute-reporter": {
        "attributes": [{"key": {"name": "x-cost"}, "expression": "usage.total_tokens"}]
    },
    "request-latency-reporter": {},
    "max-score-picker": {"maxNumOfEndpoints": 2},
    "random-picker": {},
    "weighted-random-picker": {"maxNumOfEndpoints": 2},
    "metrics-data-source": {},
    "core-metrics-extractor": {},
    "global-strict-fairness-policy": {},
    "round-robin-fairness-policy": {},
    "weighted-fair-fairness-policy": {"weights": {"tenant-a": 3}},
    "fcfs-ordering-policy": {},
    "edf-ordering-policy": {},
    "slo-deadline-ordering-policy": {},
    "static-usage-limit-policy": {"threshold": 0.9},
    "openai-parser": {},
    "passthrough-parser": {},
}

REGISTRY = builtin_registry(entry_points=False)
_KEBAB = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_SUFFIXES = ("-filter", "-scorer", "-picker", "-profile-handler", "-producer", "-parser",
             "-policy", "-detector", "-source", "-extractor", "-verifier", "-reporter",
             "-admitter")  # fmt: skip

ENDPOINTS = [
    endpoint("a", address="10.0.0.1", waiting=0, kv=0.1, active=["base-model"], max_lora=2),
    endpoint("b", address="10.0.0.2", waiting=4, running=3, kv=0.95),
    endpoint("c", address="10.0.0.3", waiting=9, kv=1.5, updated_at=0.0),
]
HEADERS = {"test-epp-endpoint-selection": "10.0.0.2,10.0.0.1"}


def build(type_name: str, name: str = "under-test") -> Any:
    if type_name not in MINIMAL_CONFIGS:
        pytest.fail(f"plugin type {type_name!r} has no entry in MINIMAL_CONFIGS: add one")
    handle = PluginHandle(rng=seeded(0), clock=FakeClock())
    return REGISTRY.create(type_name, name, MINIMAL_CONFIGS[type_name], handle)


def of_kind(kind: Kind[Any]) -> list[str]:
    return REGISTRY.of_kind(kind)


def test_every_registered_type_has_a_minimal_config() -> None:
    assert sorted(set(REGISTRY.types()) - set(MINIMAL_CONFIGS)) == []
    assert sorted(set(MINIMAL_CONFIGS) - set(REGISTRY.types())) == []


@pytest.mark.parametrize("type_name", REGISTRY.types())
def test_type_names_are_kebab_case_and_end_with_their_kind(type_name: str) -> None:
    assert _KEBAB.match(type_name)
    assert type_name.endswith(_SUFFIXES), type_name


@pytest.mark.parametrize("type_name", REGISTRY.types())
def test_from_config_names_the_instance(type_name: str) -> None:
    plugin = cast("Plugin", build(type_name, "my-name"))
    assert plugin.name == "my-name"
    assert type(plugin).type_name == type_name
    assert plugin_kinds(type(plugin))


@pytest.mark.parametrize("type_name", REGISTRY.types())
def test_unknown_parameters_are_rejected(type_name: str) -> None:
    params = {**MINIMAL_CONFIGS[type_name], "surelyNotAParam": 1}
    with pytest.raises(msgspec.ValidationError, match="surelyNotAParam"):
        REGISTRY.create(type_name, "x", params, PluginHandle())


@pytest.mark.parametrize("type_name", of_kind(kinds.SCORER))
def test_scorer_contract(type_name: str) -> None:
    scorer = cast("Scorer", build(type_name))
    assert type(scorer).category in ("distribution", "affinity")
    req = request(headers=HEADERS, prompt="p" * 100)
    scores = list(scorer.score(req, CycleState(), ENDPOINTS))
    assert len(scores) == len(ENDPOINTS)
    assert all(isinstance(s, float) and not math.isnan(s) for s in scores)
    assert list(scorer.score(req, CycleState(), [])) == []


@pytest.mark.parametrize("type_name", of_kind(kinds.FILTER))
def test_filter_contract(type_name: str) -> None:
    f = cast("Filter", build(type_name))
    kept = list(f.filter(request(headers=HEADERS), CycleState(), ENDPOINTS))
    names = [e.endpoint.name for e in kept]
    assert len(set(names)) == len(names)
    assert set(names) <= {e.endpoint.name for e in ENDPOINTS}
    assert list(f.filter(request(headers=HEADERS), CycleState(), [])) == []


@pytest.mark.parametrize("type_name", of_kind(kinds.PICKER))
def test_picker_contract(type_name: str) -> None:
    picker = cast("Picker", build(type_name))
    picked = list(picker.pick(request(), CycleState(), ENDPOINTS, [0.3, 0.9, 0.0]))
    assert 1 <= len(picked) <= 2  # maxNumOfEndpoints 2 or the default 1
    assert len({e.endpoint.name for e in picked}) == len(picked)
    assert list(picker.pick(request(), CycleState(), [], [])) == []


@pytest.mark.parametrize("type_name", of_kind(kinds.SATURATION_DETECTOR))
def test_saturation_detector_contract(type_name: str) -> None:
    detector = cast("SaturationDetector", build(type_name))
    assert detector.saturation([]) == 1.0
    assert detector.saturation(ENDPOINTS[:1]) >= 0.0


@pytest.mark.parametrize("type_name", of_kind(kinds.DATA_PRODUCER))
def test_producer_contract(type_name: str) -> None:
    producer = build(type_name)
    assert producer.produces
    state = CycleState()
    producer.prepare_data(request(prompt="p" * 100), state, ENDPOINTS)
    producer.prepare_data(request(), CycleState(), [])
    for key in producer.produces:
        assert set(state.attributes(key)) <= {e.endpoint.name for e in ENDPOINTS}


@pytest.mark.parametrize("type_name", of_kind(kinds.PRE_REQUEST))
def test_pre_request_and_completion_contract(type_name: str) -> None:
    plugin = build(type_name)
    state, req = CycleState(), request(prompt="p" * 100)
    if hasattr(plugin, "prepare_data"):
        plugin.prepare_data(req, state, ENDPOINTS)
    result = SchedulingResult({"default": ProfileResult((ENDPOINTS[0],))}, "default")
    plugin.pre_request(req, state, result)
    plugin.pre_request(req, CycleState(), SchedulingResult({"default": None}, "default"))
    if hasattr(plugin, "response_complete"):
        plugin.response_complete(req, ENDPOINTS[0].endpoint)
        plugin.response_complete(req, ENDPOINTS[0].endpoint)  # at most once is tolerated


@pytest.mark.parametrize("type_name", of_kind(kinds.PROFILE_HANDLER))
def test_profile_handler_contract(type_name: str) -> None:
    handler = build(type_name)
    names = list(handler.pick_profiles(request(), CycleState(), ("default",), {}))
    assert names
    assert set(names) <= {"default"}
    results = {"default": ProfileResult((ENDPOINTS[0],))}
    assert list(handler.pick_profiles(request(), CycleState(), ("default",), results)) == []
    assert handler.process_results(request(), CycleState(), results).targets == (ENDPOINTS[0],)


SERVED = {"envoy.lb": {"x-gateway-destination-endpoint-served": "10.0.0.2:8000"}}
RESPONSE_HEADERS = {":status": "200", "content-type": "application/json"}


@pytest.mark.parametrize("type_name", of_kind(kinds.RESPONSE_HEADER))
@pytest.mark.parametrize("metadata", [SERVED, {}], ids=["served", "no-metadata"])
def test_response_header_contract(type_name: str, metadata: Mapping[str, Any]) -> None:
    plugin = cast("ResponseHeaderProcessor", build(type_name))
    for served in (ENDPOINTS[1].endpoint, None):  # None: a request never scheduled
        response = Response("req-0", dict(RESPONSE_HEADERS), metadata)
        plugin.response_header(request(), response, served)
        # Headers stay a str -> str map, and the status is nobody's to change.
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in response.headers.items())
        assert response.headers[":status"] == "200"


def _is_struct_value(value: object) -> bool:
    """What Envoy's dynamic metadata (a protobuf Struct) can hold."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_struct_value(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_struct_value(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


@pytest.mark.parametrize("type_name", of_kind(kinds.RESPONSE_BODY))
@pytest.mark.parametrize(
    "usage",
    [Usage(5, 7, 12, cached_tokens=3), Usage(), None],
    ids=["usage", "zero-usage", "no-usage"],
)
def test_response_body_contract(type_name: str, usage: Usage | None) -> None:
    plugin = cast("ResponseBodyProcessor", build(type_name))
    response = Response("req-0", dict(RESPONSE_HEADERS), SERVED, start_of_stream=True)
    plugin.response_body(request(), response, ENDPOINTS[0].endpoint)  # a first chunk
    response.start_of_stream, response.end_of_stream, response.usage = False, True, usage
    plugin.response_body(request(), response, None)
    assert _is_struct_value(response.dynamic_metadata)
    assert all(isinstance(fields, dict) for fields in response.dynamic_metadata.values())
