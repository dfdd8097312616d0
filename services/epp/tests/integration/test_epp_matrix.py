"""The rest of upstream's hermetic EPP matrix (reference §11.3), through a real Envoy.

The cases test_epp_through_envoy.py and test_epp_response_modes.py do not cover: LoRA affinity,
the passthrough parser, the subset hint, the header model rewrite, response buffering with the
model written back, shedding, and the conformance testing filter. Each is checked as a user would
notice it: which model server got the request and with what bytes, what the client got back, and
the EPP's metrics.

The EPP runs in-process over real gRPC in upstream's compatible configuration (full duplex both
ways; the buffered answers also in igw's lean one); Envoy's ORIGINAL_DST cluster sends each
request where the EPP points. A Lua filter ahead of the EPP plays the data plane that sets the
subset hint, as `make run` does. Model servers are `ScriptedModelServer`s, which record what
arrived and answer in controlled chunks; each pod has its own loopback IP (127.0.0.2, .3 ...),
because the subset hint and the testing filter match on IPs. Endpoint metrics are set by the
test and read as freshly scraped (`FreshEndpoints`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import pytest

from igw.common.testing import ExtProcFilter, LuaFilter, OriginalDstCluster, gateway_bootstrap
from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.endpoints import EndpointState
from igw.epp.requestpath.headers import DESTINATION_SUBSET, SUBSET_NAMESPACE
from igw.epp.server import EppOptions, EppService
from igw.epp.testing.builders import endpoint
from igw.epp.testing.model_servers import Answer, ScriptedModelServer, served_by
from igw.epp.testing.requestpath import FreshEndpoints
from igw.sim.testing import wait_until

pytestmark = pytest.mark.envoy

ADAPTER = "sql-lora-1fdg2"
OBJECTIVE = "x-gateway-inference-objective"
REWRITE = "x-gateway-model-name-rewrite"
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
SHED = b"inference error: ResourceExhausted - system saturated, sheddable request dropped"

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


def completion(model: str, prompt: str) -> bytes:
    return json.dumps({"model": model, "prompt": prompt, "max_tokens": 100}).encode()


@dataclass
class Gateway:
    url: str
    epp: EppService
    source: FreshEndpoints
    session: aiohttp.ClientSession

    def route_to(self, *states: EndpointState) -> None:
        self.source.states = states

    async def post(
        self, body: bytes, path: str = "/v1/completions", **headers: str
    ) -> tuple[int, bytes]:
        async with asyncio.timeout(30):  # nothing may hang
            async with self.session.post(self.url + path, data=body, headers=headers) as response:
                return response.status, await response.read()

    def metric(self, name: str, **labels: str) -> float:
        return self.epp.registry.get_sample_value(name, labels) or 0.0

    async def settled(self, model: str) -> None:
        """Waits until no request for `model` is in flight (streams end just after the answer)."""
        await wait_until(
            lambda: self.metric("inference_objective_running_requests", model_name=model) == 0
        )


class StartGateway(Protocol):
    def __call__(
        self,
        *,
        config: str | None = None,
        objectives: Mapping[str, int] | None = None,
        subset_hint: Sequence[str] | None = None,
        disable_subset_filter: bool = False,
        lean: bool = False,
    ) -> Awaitable[Gateway]: ...


def subset_hint_lua(entries: Sequence[str]) -> str:
    """Envoy Lua standing in for a data plane that hints the subset `entries` on every request."""
    items = ", ".join(json.dumps(entry) for entry in entries)  # plain ASCII: valid Lua strings
    return f"""
function envoy_on_request(handle)
  handle:streamInfo():dynamicMetadata():set(
    "{SUBSET_NAMESPACE}", "{DESTINATION_SUBSET}", {{{items}}})
end
"""


@pytest.fixture
async def start_gateway(
    envoy_factory: EnvoyFactory, free_port_factory: Callable[[], int]
) -> AsyncIterator[StartGateway]:
    """Starts the EPP (config, objectives, flags) and Envoy (subset hint, response mode)."""
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def start(
            *,
            config: str | None = None,
            objectives: Mapping[str, int] | None = None,
            subset_hint: Sequence[str] | None = None,
            disable_subset_filter: bool = False,
            lean: bool = False,
        ) -> Gateway:
            source = FreshEndpoints()
            options = EppOptions(
                grpc_port=0, grpc_health_port=0, metrics_port=0, host="127.0.0.1",
                secure_serving=False, tracing=False, grace_s=0.5, config_text=config,
                objectives=dict(objectives or {}),
                disable_endpoint_subset_filter=disable_subset_filter,
            )  # fmt: skip
            epp = EppService(options, endpoint_source=source)
            await epp.start()
            stack.push_async_callback(epp.stop)
            # Upstream's compatible config, or igw's lean one (test_epp_response_modes.py).
            epp_filter = ExtProcFilter(
                name="epp", port=epp.server.grpc_port, tls=False, response_header_mode="SEND",
                response_body_mode="STREAMED" if lean else "FULL_DUPLEX_STREAMED",
                response_trailer_mode="SKIP" if lean else "SEND",
                forwarding_namespaces=(SUBSET_NAMESPACE,),
            )  # fmt: skip
            filters: list[ExtProcFilter | LuaFilter] = [epp_filter]
            if subset_hint is not None:
                filters.insert(0, LuaFilter("subset-hint", subset_hint_lua(subset_hint)))
            bootstrap = gateway_bootstrap(
                listen_port=free_port_factory(), admin_port=free_port_factory(),
                ext_procs=filters, routes=[], clusters=[OriginalDstCluster("pool")],
                default_cluster="pool",
            )  # fmt: skip
            envoy = await envoy_factory.start_async(bootstrap)
            stack.push_async_callback(envoy.stop_async)
            return Gateway(envoy.url, epp, source, session)

        yield start


@pytest.fixture
async def pods() -> AsyncIterator[tuple[ScriptedModelServer, ...]]:
    """Three model servers, pod-0 .. pod-2, on 127.0.0.2 .. 127.0.0.4."""
    async with contextlib.AsyncExitStack() as stack:
        servers = [ScriptedModelServer(f"pod-{i}", host=f"127.0.0.{i + 2}") for i in range(3)]
        yield tuple([await stack.enter_async_context(server) for server in servers])


def state(
    server: ScriptedModelServer, waiting: int = 0, kv: float = 0.0, active: Sequence[str] = ()
) -> EndpointState:
    return endpoint(
        f"{server.name}-rank-0", address=server.host, port=server.port, waiting=waiting, kv=kv,
        active=active,
    )  # fmt: skip


# --- Scheduling -----------------------------------------------------------------------------


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
    gateway = await start_gateway(config=config)
    adapter_pod, plain_pod = pods[0], pods[1]
    gateway.route_to(
        state(adapter_pod, waiting=10, kv=0.4, active=("foo", ADAPTER)),
        state(plain_pod, waiting=10, kv=0.3, active=("foo",)),
    )
    headers = {} if incoming == ADAPTER else {REWRITE: ADAPTER}
    for i in range(3):
        status, body = await gateway.post(completion(incoming, f"test{i}"), **headers)
        assert status == 200, body

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
    gateway = await start_gateway(config=PASSTHROUGH_CONFIG, objectives={"my-objective": 2})
    gateway.route_to(state(pods[0], 3, 0.2), state(pods[1], 0, 0.1), state(pods[2], 10, 0.2))
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
        subset_hint=[entry.format(*pods) for entry in hint], disable_subset_filter=disabled
    )
    gateway.route_to(state(pods[0], 0, 0.0), state(pods[1], 2, 0.2), state(pods[2], 10, 0.5))
    for i in range(3):
        status, body = await gateway.post(completion("m", f"test{i}"))
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
    gateway = await start_gateway(config=TESTING_FILTER_CONFIG)
    # pod-3 shares pod-1's IP on another port, so `ip` and `ip:port` select differently.
    async with ScriptedModelServer("pod-3", host=pods[1].host) as extra:
        everyone = (*pods, extra)
        gateway.route_to(*(state(pod) for pod in everyone))
        headers = {} if selection is None else {SELECTION: selection.format(*everyone)}
        limit = asyncio.Semaphore(5)

        async def one(i: int) -> tuple[int, bytes]:
            async with limit:
                return await gateway.post(completion("m", f"q{i}"), **headers)

        # As the conformance test: many requests, several at once; only the listed ever serve.
        answers = await asyncio.gather(*(one(i) for i in range(20)))

    if not serving:
        assert set(answers) == {(429, NO_TARGET)}
    else:
        assert {status for status, _ in answers} == {200}
    served = {i for i, pod in enumerate(everyone) if pod.received}
    assert served == serving
    assert sum(len(pod.received) for pod in everyone) == (20 if serving else 0)


# --- Admission --------------------------------------------------------------------------------

SATURATED = ((6, 0.2), (0, 0.85), (10, 0.9))  # each pod over the queue (5) or KV (0.8) threshold
WITH_ROOM = ((0, 0.1), (1, 0.2), (2, 0.3))


@pytest.mark.parametrize(
    ("objective", "load", "status"),
    [
        pytest.param(None, SATURATED, 200, id="do-not-shed-by-default"),
        pytest.param("critical", SATURATED, 200, id="critical-saturated-admitted"),
        pytest.param("batch", SATURATED, 429, id="sheddable-saturated-shed"),
        pytest.param("batch", WITH_ROOM, 200, id="sheddable-with-room-admitted"),
    ],
)
async def test_only_sheddable_requests_are_shed_and_only_when_saturated(
    start_gateway: StartGateway,
    pods: tuple[ScriptedModelServer, ...],
    objective: str | None,
    load: tuple[tuple[int, float], ...],
    status: int,
) -> None:
    gateway = await start_gateway(objectives={"batch": -1, "critical": 2})
    gateway.route_to(*(state(pod, *metrics) for pod, metrics in zip(pods, load, strict=True)))
    headers = {} if objective is None else {OBJECTIVE: objective}
    got, body = await gateway.post(completion("m", "test4"), **headers)

    assert got == status, body
    if status == 429:
        assert body == SHED
        assert sum(len(pod.received) for pod in pods) == 0
        labels = {"model_name": "m", "target_model_name": "m", "error_code": "ResourceExhausted"}
        assert gateway.metric("inference_objective_request_error_total", **labels) == 1
    else:
        assert sum(len(pod.received) for pod in pods) == 1
        priority = {None: "0", "critical": "2", "batch": "-1"}[objective]
        labels = {"model_name": "m", "target_model_name": "m", "priority": priority}
        assert gateway.metric("inference_objective_request_total", **labels) == 1


# --- Model rewrite and the response path ------------------------------------------------------


async def test_header_model_rewrite(
    start_gateway: StartGateway, pods: tuple[ScriptedModelServer, ...]
) -> None:
    gateway = await start_gateway()
    gateway.route_to(state(pods[0]))
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    status, answer = await gateway.post(
        json.dumps(chat).encode(), "/v1/chat/completions", **{REWRITE: "adapter-with-a-long-name"}
    )
    await gateway.settled("m")

    assert status == 200, answer
    [received] = pods[0].received
    # The model server is asked for the rewritten model, the rest of the body unchanged ...
    assert json.loads(received.body) == {**chat, "model": "adapter-with-a-long-name"}
    assert REWRITE not in received.headers
    # ... and the client sees its own model name back.
    assert json.loads(answer)["model"] == "m"
    assert b"adapter-with-a-long-name" not in answer
    models = {"model_name": "m", "target_model_name": "adapter-with-a-long-name"}
    assert gateway.metric("inference_objective_request_total", **models, priority="0") == 1
    assert gateway.metric("inference_objective_input_tokens_sum", **models) == 3
    assert gateway.metric("inference_objective_response_sizes_count", **models) == 1


INCOMING, TARGET = "sql-lora-sheddable", "sql-lora-1fdg3"
_ANSWER = '{{"max_tokens":100,"model":"{model}","prompt":"test6","temperature":0}}'
AS_TARGET = _ANSWER.format(model=TARGET).encode()
AS_INCOMING = _ANSWER.format(model=INCOMING).encode()
_SPLIT = AS_TARGET.index(b"sql-lo") + len(b"sql-lo")  # inside the model name
# 300 KB naming the model at both ends, answered in 10 KB pieces: the rewritten body goes back to
# Envoy in several 62,000-byte chunks.
_LONG = '{{"model":"{model}","choices":[{{"text":"{text}"}}],"echo":{{"model":"{model}"}}}}'
LONG_TARGET = _LONG.format(model=TARGET, text="x" * 300_000).encode()
LONG_INCOMING = _LONG.format(model=INCOMING, text="x" * 300_000).encode()
LONG_CHUNKS = tuple(LONG_TARGET[i : i + 10_000] for i in range(0, len(LONG_TARGET), 10_000))


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            Answer(chunks=(AS_TARGET[:_SPLIT], AS_TARGET[_SPLIT:])), AS_INCOMING,
            id="multi-chunk-json",
        ),
        pytest.param(
            Answer(chunks=(AS_TARGET[:_SPLIT], AS_TARGET[_SPLIT:]), content_length=True),
            AS_INCOMING, id="multi-chunk-json-with-content-length",
        ),
        pytest.param(
            Answer(chunks=LONG_CHUNKS, pause_s=0.001, content_length=True), LONG_INCOMING,
            id="large-json-in-many-chunks",
        ),
        pytest.param(
            Answer(chunks=(b"no healthy upstream",)), b"no healthy upstream", id="invalid-json"
        ),
        pytest.param(
            Answer(chunks=(AS_TARGET, b""), pause_s=0.2), AS_INCOMING, id="json-then-empty-eos"
        ),
        pytest.param(Answer(chunks=()), b"", id="empty-chunked"),
        pytest.param(Answer(chunks=(), content_length=True), b"", id="empty-content-length"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("lean", [False, True], ids=["compatible", "lean"])
async def test_buffered_response_gets_the_model_written_back(
    start_gateway: StartGateway,
    pods: tuple[ScriptedModelServer, ...],
    answer: Answer,
    expected: bytes,
    lean: bool,
) -> None:
    gateway = await start_gateway(lean=lean)
    pods[0].answer = lambda _: answer
    gateway.route_to(state(pods[0]))
    status, body = await gateway.post(completion(INCOMING, "test6"), **{REWRITE: TARGET})
    await gateway.settled(INCOMING)

    assert status == 200
    assert body == expected
    [received] = pods[0].received
    assert received.model == TARGET
    # The response's end was seen: it is counted once, with both model labels.
    models = {"model_name": INCOMING, "target_model_name": TARGET}
    assert gateway.metric("inference_objective_response_sizes_count", **models) == 1
