"""Where requests land: LoRA affinity, the passthrough parser, the data plane's subset hint, and
the conformance testing filter (the gateway and the pods: conftest.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from igw.epp.requestpath.headers import MODEL_REWRITE, OBJECTIVE
from igw.epp.server import EppOptions
from igw.epp.testing.gateway import GatewaySettings, StartGateway
from igw.epp.testing.model_servers import ScriptedModelServer, served_by
from igw.epp.testing.openai_requests import completion
from igw.epp.testing.started_gateway import endpoint_for

pytestmark = pytest.mark.envoy

ADAPTER = "sql-lora-1fdg2"
SELECTION = "test-epp-endpoint-selection"

# Upstream's answers (reference §1.10), byte for byte.
NO_CANDIDATES = (
    b"inference error: ServiceUnavailable - "
    b"failed to find endpoint candidates for serving the request"
)
NO_TARGET = (
    b"inference error: ResourceExhausted - "
    b"failed to find target endpoint: failed to run scheduler profile 'default'"
)

# Upstream's hermetic test config (test/integration/epp/testdata/default-config.yaml): the four
# scorers at weight 1, LoRA affinity among them. The built-in default has no LoRA scorer.
LORA_CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: prefix-cache-scorer
- type: lora-affinity-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
  - pluginRef: prefix-cache-scorer
  - pluginRef: lora-affinity-scorer
"""

PASSTHROUGH_CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: passthrough-parser
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
parser:
  pluginRef: passthrough-parser
"""

# The conformance suite's EPP: only the endpoints a request names may serve it.
TESTING_FILTER_CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: header-based-testing-filter
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: header-based-testing-filter
  - pluginRef: max-score-picker
"""


@pytest.mark.parametrize(
    ("config", "incoming", "winner"),
    [
        pytest.param(None, ADAPTER, 1, id="default-config-prefers-lower-kv"),
        pytest.param(LORA_CONFIG, ADAPTER, 0, id="upstream-test-config-prefers-the-adapter"),
        # The affinity is for the model the server will be asked for: here the rewritten one.
        pytest.param(LORA_CONFIG, "sql-lora", 0, id="adapter-named-by-the-rewrite-header"),
    ],
)
async def test_lora_affinity_beats_lower_kv(
    start_gateway: StartGateway,
    pods: tuple[ScriptedModelServer, ...],
    config: str | None,
    incoming: str,
    winner: int,
) -> None:
    gateway = await start_gateway(GatewaySettings(epp=EppOptions(config_text=config)))
    adapter_pod, plain_pod = pods[0], pods[1]
    gateway.route_to(
        endpoint_for(adapter_pod, waiting=10, kv=0.4, active=("foo", ADAPTER)),
        endpoint_for(plain_pod, waiting=10, kv=0.3, active=("foo",)),
    )
    headers = {} if incoming == ADAPTER else {MODEL_REWRITE: ADAPTER}
    for i in range(3):
        body = completion(incoming, f"test{i}", max_tokens=100)
        status, answer = await gateway.post(body, **headers)
        assert status == 200, answer

    # The built-in default scores load only, so the lower KV wins; upstream's hermetic config
    # (LoRA affinity at weight 1) sends adapter requests where the adapter is already loaded.
    assert served_by(pods[:2]) == {
        adapter_pod.name: 3 if winner == 0 else 0,
        plain_pod.name: 3 if winner == 1 else 0,
    }
    assert {r.model for r in (*adapter_pod.received, *plain_pod.received)} == {ADAPTER}
    labels = {"model_name": incoming, "target_model_name": ADAPTER, "priority": "0"}
    assert gateway.metric("inference_objective_request_total", **labels) == 3


async def test_passthrough_parser_routes_any_body_byte_exact(
    start_gateway: StartGateway, pods: tuple[ScriptedModelServer, ...]
) -> None:
    epp = EppOptions(config_text=PASSTHROUGH_CONFIG, objectives={"my-objective": 2})
    gateway = await start_gateway(GatewaySettings(epp=epp))
    gateway.route_to(
        endpoint_for(pods[0], waiting=3, kv=0.2),
        endpoint_for(pods[1], waiting=0, kv=0.1),
        endpoint_for(pods[2], waiting=10, kv=0.2),
    )
    # Upstream's body, then 300 KB of binary that crosses several 62,000-byte chunks each way.
    bodies = [b"passthrough-parser", bytes(range(256)) * 1200]
    for body in bodies:
        status, answer = await gateway.post(body, "/v1/anything", **{OBJECTIVE: "my-objective"})
        assert status == 200, answer
        # The answer comes back untouched too: the server's own JSON, with no model in it.
        assert json.loads(answer)["model"] == ""

    assert served_by(pods) == {"pod-0": 0, "pod-1": 2, "pod-2": 0}
    assert [r.body for r in pods[1].received] == bodies
    # No model is read; the priority still comes from the objective header.
    labels = {"model_name": "", "target_model_name": "", "priority": "2"}
    assert gateway.metric("inference_objective_request_total", **labels) == 2


@pytest.mark.parametrize(
    ("hint", "winner", "disabled"),
    [
        # pod-0 is idle and would win without a hint; the best pod of the subset wins instead.
        pytest.param(["{1.hostport}", "{2.hostport}"], 1, False, id="select-best-of-subset"),
        pytest.param(["{2.hostport}", "127.0.0.99:8000"], 2, False, id="partial-some-unknown"),
        # Upstream matches the IP only (quirk kept): another port of pod-2's IP still selects it.
        pytest.param(["{2.host}:1"], 2, False, id="port-is-ignored"),
        pytest.param(["127.0.0.99:8000"], None, False, id="no-match-503"),
        # --disable-endpoint-subset-filter: the hint is ignored, the whole pool is candidate.
        pytest.param(["127.0.0.99:8000"], 0, True, id="filter-disabled"),
    ],
)
async def test_subset_hint_from_the_data_plane(
    start_gateway: StartGateway,
    pods: tuple[ScriptedModelServer, ...],
    hint: list[str],
    winner: int | None,
    disabled: bool,
) -> None:
    gateway = await start_gateway(
        GatewaySettings(
            epp=EppOptions(disable_endpoint_subset_filter=disabled),
            subset_hint=tuple(entry.format(*pods) for entry in hint),
        )
    )
    gateway.route_to(
        endpoint_for(pods[0], waiting=0, kv=0.0),
        endpoint_for(pods[1], waiting=2, kv=0.2),
        endpoint_for(pods[2], waiting=10, kv=0.5),
    )
    for i in range(3):
        status, body = await gateway.post(completion("m", f"test{i}", max_tokens=100))
        if winner is None:
            assert status == 503
            assert body == NO_CANDIDATES
        else:
            assert status == 200, body

    expected = {pod.name: 0 for pod in pods}
    if winner is not None:
        expected[pods[winner].name] = 3
    assert served_by(pods) == expected
    if winner is None:
        labels = {"model_name": "m", "target_model_name": "m", "error_code": "ServiceUnavailable"}
        assert gateway.metric("inference_objective_request_error_total", **labels) == 3


@pytest.mark.parametrize(
    ("selection", "serving"),
    [
        pytest.param("{0.host}", {0}, id="ip"),
        pytest.param("{3.hostport}", {3}, id="ip-port"),
        pytest.param("{1.host}", {1, 3}, id="ip-covers-every-port"),
        pytest.param("{0.host},{1.hostport}", {0, 1}, id="several"),
        pytest.param(None, set(), id="absent-429"),
    ],
)
async def test_endpoint_selection_header_with_the_testing_filter(
    start_gateway: StartGateway,
    pods: tuple[ScriptedModelServer, ...],
    selection: str | None,
    serving: set[int],
) -> None:
    gateway = await start_gateway(
        GatewaySettings(epp=EppOptions(config_text=TESTING_FILTER_CONFIG))
    )
    # pod-3 shares pod-1's IP on another port, so `ip` and `ip:port` select differently.
    async with ScriptedModelServer("pod-3", host=pods[1].host) as extra:
        everyone = (*pods, extra)
        gateway.route_to(*map(endpoint_for, everyone))
        headers = {} if selection is None else {SELECTION: selection.format(*everyone)}
        limit = asyncio.Semaphore(5)

        async def one(i: int) -> tuple[int, bytes]:
            async with limit:
                return await gateway.post(completion("m", f"q{i}", max_tokens=100), **headers)

        # As the conformance test: many requests, several at once; only the listed ever serve.
        answers = await asyncio.gather(*(one(i) for i in range(20)))

    if not serving:
        assert set(answers) == {(429, NO_TARGET)}
    else:
        assert {status for status, _ in answers} == {200}
    served = {i for i, pod in enumerate(everyone) if pod.received}
    assert served == serving
    assert sum(len(pod.received) for pod in everyone) == (20 if serving else 0)
