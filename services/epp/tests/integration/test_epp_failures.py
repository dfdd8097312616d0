"""The EPP's failure paths through a real Envoy: clients that leave, model servers that fail.

DESIGN §7: every bad input gets a clear error and leaves the service healthy. Each case here
checks what a user or an operator would notice, in both EPP response modes (compatible: response
body FULL_DUPLEX_STREAMED, trailers SEND; lean: STREAMED, trailers SKIP), and then that nothing
was left behind:

* the gateway holds no ext_proc stream open to the EPP (Envoy's own gauge of active requests on
  the EPP's cluster, as an operator would read it from Envoy's admin `/stats`);
* `inference_objective_running_requests` is back to 0;
* the EPP's in-flight counts (the admin `ListEndpoints` over gRPC, as `igw-epp-admin` reads
  them; kept by the configured `inflight-load-producer`) are back to 0;
* and the EPP still reports SERVING on its health port and serves a normal request.

What the EPP counts for a failure follows upstream (reference §7, §1.10): a response whose status
is not 200 is one `inference_objective_request_error_total{error_code="ModelServerError"}`, also
when Envoy made the answer itself (a 503 for a pod that refuses connections). A client that
leaves, or a model server that dies after a 200, is no error there: upstream's stream ends with
`Canceled` and records nothing but the running gauge going down. Such a request is still in
`inference_objective_request_total` (it was scheduled) and is missing from the latency and
response-size histograms, which record only responses whose end was seen. A request refused
after it was scheduled (a body the EPP cannot rewrite: 500) is never counted as scheduled, and
its PreRequest in-flight count is taken back when its stream ends, as upstream runs the
completion hooks for every picked pod whose response never completed.

Model servers: `igw.sim` pods (`FakeEngine`: real SSE, a settable token interval, a gate that
freezes generation, `x-return-error` failure injection) and `ScriptedModelServer`s (byte-exact
records of what arrived; `Answer.drop_after` drops the connection mid-answer, as a crashed
server's kernel does). The EPP runs in-process over real gRPC; endpoints read as freshly scraped.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from igw.common.extproc import EXT_PROC_SERVICE
from igw.common.testing import ExtProcFilter, OriginalDstCluster, gateway_bootstrap
from igw.common.testing.envoy_config import BodyMode, HeaderMode
from igw.common.testing.envoy_process import EnvoyProcess
from igw.common.testing.pytest_plugin import EnvoyFactory
from igw.epp.admin import AdminClient
from igw.epp.server import EppOptions, EppService
from igw.epp.testing.builders import endpoint
from igw.epp.testing.model_servers import Answer, Received, ScriptedModelServer
from igw.epp.testing.requestpath import FreshEndpoints
from igw.sim.server import SimPod
from igw.sim.testing import FakeEngine, serve_pod, wait_until

pytestmark = pytest.mark.envoy

MODEL = "m"
EPP_STREAMS = "cluster.ext_proc_epp.upstream_rq_active"
"""Envoy's gauge of open requests on the EPP's cluster: one gRPC stream per HTTP request."""
SETTLE_S = 10.0
"""Generous: streams end just after the client's answer, but the machine is shared."""

# The built-in scorers plus the plugin that counts each endpoint's requests in flight, which the
# admin `ListEndpoints` reports.
CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: inflight-load-producer
- type: queue-scorer
- type: kv-cache-utilization-scorer
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
  - pluginRef: kv-cache-utilization-scorer
"""

MODES: dict[str, tuple[BodyMode, HeaderMode]] = {
    "compatible": ("FULL_DUPLEX_STREAMED", "SEND"),
    "lean": ("STREAMED", "SKIP"),
}
ADAPTER = "t"
TARGETS = [pytest.param(MODEL, id="as-asked"), pytest.param(ADAPTER, id="rewritten")]
"""The model the pod is asked for. A rewritten one must be written back in the answer, so the EPP
reads the response body in the lean mode too (and sees its end, or that it never came)."""


@dataclass(frozen=True)
class Address:
    """An endpoint with no model server behind it that answers."""

    name: str
    host: str
    port: int


Pod = ScriptedModelServer | SimPod | Address
FIVE_MIB_TEXT = "".join(f"línea {i}: {'ß' * 40}\n" for i in range(70_000))
"""Over 5 MiB of UTF-8 text in many lines."""


def rewrite(target: str) -> dict[str, str]:
    """The request headers that make the EPP send `target` to the pod."""
    return {} if target == MODEL else {"x-gateway-model-name-rewrite": target}


def completion(prompt: str = "hello", **fields: object) -> dict[str, object]:
    return {"model": MODEL, "prompt": prompt, **fields}


def streamed(prompt: str, max_tokens: int) -> dict[str, object]:
    return completion(prompt, max_tokens=max_tokens, stream=True)


def sse_events(count: int) -> tuple[bytes, ...]:
    """`count` OpenAI-style completion chunks, then `[DONE]`, one event per chunk."""
    chunk = {"object": "text_completion", "model": MODEL, "choices": [{"text": "x"}]}
    return (*(b"data: " + json.dumps(chunk).encode() + b"\n\n" for _ in range(count)),
            b"data: [DONE]\n\n")  # fmt: skip


@dataclass
class Gateway:
    url: str
    epp: EppService
    envoy: EnvoyProcess
    source: FreshEndpoints
    session: aiohttp.ClientSession
    admin: AdminClient
    health: Any
    """`grpc.health.v1.Health` on the EPP's health port (typeshed declares no RPC methods)."""
    healthy_pod: ScriptedModelServer
    """A model server that always answers, for the after-the-failure check."""

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.url.removeprefix("http://").split(":")
        return host, int(port)

    def route_to(self, *pods: Pod) -> None:
        """The pool is these pods, with equal (idle) metrics."""
        self.source.states = tuple(
            endpoint(f"{name}-rank-0", address=host, port=port)
            for name, host, port in map(_where, pods)
        )

    async def start_upload(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A raw connection that sends request headers and the first chunk of a chunked body."""
        reader, writer = await asyncio.open_connection(*self.address)
        head = (
            "POST /v1/completions HTTP/1.1\r\nhost: gateway\r\n"
            "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        start = b'{"model": "m", "prompt": "' + b"x" * 20_000
        writer.write(head.encode() + f"{len(start):x}\r\n".encode() + start + b"\r\n")
        await writer.drain()
        return reader, writer

    async def post(
        self, body: dict[str, object], path: str = "/v1/completions", **headers: str
    ) -> tuple[int, bytes]:
        async with asyncio.timeout(30):  # nothing may hang
            async with self.session.post(self.url + path, json=body, headers=headers) as response:
                return response.status, await response.read()

    def metric(self, name: str, **labels: str) -> float:
        return self.epp.registry.get_sample_value(name, labels) or 0.0

    def scheduled(self, target: str = MODEL) -> float:
        """`inference_objective_request_total`: requests scheduled onto a pod."""
        labels = {"model_name": MODEL, "target_model_name": target, "priority": "0"}
        return self.metric("inference_objective_request_total", **labels)

    def server_errors(self, target: str = MODEL) -> float:
        """Responses with a status other than 200, as upstream counts them."""
        labels = {"model_name": MODEL, "target_model_name": target}
        return self.metric(
            "inference_objective_request_error_total", **labels, error_code="ModelServerError"
        )

    def ended(self, target: str = MODEL) -> float:
        """Responses whose end the EPP saw (the size histogram records only those)."""
        labels = {"model_name": MODEL, "target_model_name": target}
        return self.metric("inference_objective_response_sizes_count", **labels)

    def running(self) -> float:
        return self.metric("inference_objective_running_requests", model_name=MODEL)

    async def in_flight(self) -> int:
        """Requests the EPP counts as sent and not complete, over every endpoint (admin)."""
        inventory = await self.admin.list_endpoints()
        assert inventory.in_flight_tracked
        return sum(report.in_flight.requests for report in inventory.endpoints)

    async def serving(self) -> bool:
        request = health_pb2.HealthCheckRequest(service=EXT_PROC_SERVICE)
        reply = await self.health.Check(request, timeout=SETTLE_S)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def epp_streams(self) -> int:
        stats = await asyncio.to_thread(self.envoy.admin_stats, EPP_STREAMS)
        return stats.get(EPP_STREAMS, 0)

    async def wait_for_epp_streams(self, count: int) -> None:
        async with asyncio.timeout(SETTLE_S):
            while await self.epp_streams() != count:  # noqa: ASYNC110 - Envoy's state, polled
                await asyncio.sleep(0.02)

    async def leftovers(self) -> dict[str, float]:
        return {
            "gateway streams to the EPP": await self.epp_streams(),
            "running requests": self.running(),
            "in flight": await self.in_flight(),
        }

    async def settled(self) -> None:
        """Waits until nothing is open or counted anywhere; fails on a leak, naming it."""
        try:
            async with asyncio.timeout(SETTLE_S):
                while any((await self.leftovers()).values()):  # noqa: ASYNC110 - polled
                    await asyncio.sleep(0.02)
        except TimeoutError:
            raise AssertionError(f"left behind: {await self.leftovers()}") from None

    async def still_serves(self) -> None:
        """Settled, a normal request succeeds, and it leaves nothing behind either."""
        await self.settled()
        assert await self.serving()
        self.route_to(self.healthy_pod)
        before = len(self.healthy_pod.received)
        status, body = await self.post(completion("are you still there?"))
        assert status == 200, body
        assert json.loads(body)["model"] == MODEL
        assert len(self.healthy_pod.received) == before + 1
        await self.settled()


@pytest.fixture(params=list(MODES))
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def gateway(
    mode: str, envoy_factory: EnvoyFactory, free_port_factory: Callable[[], int]
) -> AsyncIterator[Gateway]:
    body_mode, trailer_mode = MODES[mode]
    async with contextlib.AsyncExitStack() as stack:
        healthy = await stack.enter_async_context(ScriptedModelServer("healthy"))
        source = FreshEndpoints()
        options = EppOptions(
            grpc_port=0, grpc_health_port=0, metrics_port=0, host="127.0.0.1",
            secure_serving=False, tracing=False, grace_s=0.5, config_text=CONFIG,
        )  # fmt: skip
        epp = EppService(options, endpoint_source=source)
        await epp.start()
        stack.push_async_callback(epp.stop)
        epp_filter = ExtProcFilter(
            name="epp", port=epp.server.grpc_port, tls=False, response_header_mode="SEND",
            response_body_mode=body_mode, response_trailer_mode=trailer_mode,
        )  # fmt: skip
        bootstrap = gateway_bootstrap(
            listen_port=free_port_factory(), admin_port=free_port_factory(),
            ext_procs=[epp_filter], routes=[], clusters=[OriginalDstCluster("pool")],
            default_cluster="pool",
        )  # fmt: skip
        envoy = await envoy_factory.start_async(bootstrap)
        stack.push_async_callback(envoy.stop_async)
        # No per-host connection cap: the concurrency case opens hundreds at once.
        connector = aiohttp.TCPConnector(limit=0)
        session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{epp.server.health_port}")
        stack.push_async_callback(channel.close)
        admin = AdminClient(channel, timeout_s=SETTLE_S)
        health = health_pb2_grpc.HealthStub(channel)
        yield Gateway(envoy.url, epp, envoy, source, session, admin, health, healthy)


async def read_into(got: list[bytes], response: aiohttp.ClientResponse) -> None:
    """Appends the body's data as it comes, until its end (or an error: what came stays)."""
    async with asyncio.timeout(SETTLE_S):
        async for data in response.content.iter_any():
            got.append(data)  # noqa: PERF401 - a comprehension would lose the data on error


def _where(pod: Pod) -> tuple[str, str, int]:
    if isinstance(pod, SimPod):
        return pod.settings.pod_name, pod.settings.host, pod.port
    return pod.name, pod.host, pod.port


@contextlib.asynccontextmanager
async def broken_pod(fault: str, port: int) -> AsyncIterator[Address]:
    """A pod that refuses connections (nothing listens), or accepts and hangs up unanswered."""
    if fault == "refuses":
        yield Address("pod-gone", "127.0.0.1", port)
        return

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the request's headers arrived, then: nothing
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", port)
    async with server:
        yield Address("pod-hangs-up", "127.0.0.1", port)


def sim_engine(token_interval_s: float = 0.001) -> FakeEngine:
    """A simulated engine with room for every request a test sends (no 429 from the pod)."""
    return FakeEngine(
        model=MODEL, max_num_seqs=512, max_waiting=512, token_interval_s=token_interval_s
    )


# --- Clients that leave ---------------------------------------------------------------------


async def test_client_leaves_while_uploading(gateway: Gateway) -> None:
    pod = ScriptedModelServer("pod-0")
    async with pod:
        gateway.route_to(pod)
        reader, writer = await gateway.start_upload()
        # The EPP has the request open, waiting for the rest of the body, when the client goes.
        await gateway.wait_for_epp_streams(1)
        writer.close()
        await writer.wait_closed()
        assert await reader.read() == b""  # no answer for a request that never ended

        await gateway.settled()
    assert pod.received == []
    assert gateway.scheduled() == 0
    assert gateway.server_errors() == 0
    await gateway.still_serves()


async def test_client_leaves_before_the_answer_starts(gateway: Gateway) -> None:
    engine = sim_engine()
    engine.gate.clear()  # the pod accepts the request and then generates nothing
    async with serve_pod(engine, model=MODEL, pod_name="pod-0") as pod:
        gateway.route_to(pod)
        task = asyncio.create_task(gateway.post(completion(max_tokens=5)))
        await wait_until(lambda: len(engine.running) == 1, SETTLE_S)
        # Waiting for its first byte, the request is running and in flight, in both modes.
        assert (gateway.running(), await gateway.in_flight()) == (1, 1)
        task.cancel()  # the client gives up: aiohttp closes the connection
        with pytest.raises(asyncio.CancelledError):
            await task

        await gateway.settled()
        # The disconnect travelled through Envoy to the pod, which stopped the request.
        await wait_until(lambda: len(engine.cancelled) == 1, SETTLE_S)
        engine.gate.set()
    assert gateway.scheduled() == 1
    assert gateway.server_errors() == 0
    assert gateway.ended() == 0
    await gateway.still_serves()


@pytest.mark.parametrize("target", TARGETS)
async def test_client_leaves_mid_stream(gateway: Gateway, mode: str, target: str) -> None:
    engine = sim_engine(token_interval_s=0.02)  # 500 tokens: ten seconds unless cut short
    adapters = {ADAPTER: "/adapters/t"}
    async with serve_pod(engine, model=MODEL, pod_name="pod-0", adapters=adapters) as pod:
        gateway.route_to(pod)
        async with gateway.session.post(
            gateway.url + "/v1/completions",
            json=streamed("tell me a story", 500),
            headers=rewrite(target),
        ) as response:
            assert response.status == 200
            assert response.content_type == "text/event-stream"
            for _ in range(3):
                event = await asyncio.wait_for(response.content.readuntil(b"\n\n"), SETTLE_S)
                assert event.startswith(b'data: {"id"')
                assert b'"model":"m"' in event
            # Mid-stream the request counts as running where the EPP reads the body; a skipped
            # body (lean) finished at the response headers (server.py's module docstring).
            reads = mode == "compatible" or target != MODEL
            assert (gateway.running(), await gateway.in_flight()) == (reads, reads)
            response.close()  # the client hangs up with most of the answer to come

        await gateway.settled()
        await wait_until(lambda: len(engine.cancelled) == 1, SETTLE_S)
    assert engine.generation_tokens < 500
    assert gateway.scheduled(target) == 1
    assert gateway.server_errors(target) == 0
    assert gateway.ended(target) == 0
    await gateway.still_serves()


# --- Model servers that fail ----------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("stream", [True, False], ids=["sse", "json"])
async def test_model_server_dies_mid_answer(gateway: Gateway, stream: bool, target: str) -> None:
    if stream:
        chunks, sent = sse_events(10), 4
        answer = Answer(chunks, content_type="text/event-stream", drop_after=sent)
    else:
        whole = json.dumps(completion("x" * 5000)).encode()
        chunks, sent = (whole[:2000], whole[2000:4000], whole[4000:]), 2
        answer = Answer(chunks, content_length=True, drop_after=sent)
    async with ScriptedModelServer("pod-0", answer=lambda _: answer) as pod:
        gateway.route_to(pod)
        async with gateway.session.post(
            gateway.url + "/v1/completions", json=completion(stream=stream), headers=rewrite(target)
        ) as response:
            assert response.status == 200
            got: list[bytes] = []
            with pytest.raises(aiohttp.ClientPayloadError):
                await read_into(got, response)

        # The client sees a cut-off answer, never a made-up end.
        assert b"".join(chunks[:sent]).startswith(b"".join(got))
        assert [r.model for r in pod.received] == [target]
        await gateway.settled()
    assert gateway.scheduled(target) == 1
    # A 200 whose body broke off is no error upstream either; its end was never seen.
    assert gateway.server_errors(target) == 0
    assert gateway.ended(target) == 0
    await gateway.still_serves()


async def test_pod_stopped_mid_stream(gateway: Gateway) -> None:
    # A simulated vLLM pod shut down with a short grace: its open stream is cut off.
    engine = sim_engine(token_interval_s=0.02)  # 500 tokens: ten seconds unless cut short
    async with serve_pod(engine, model=MODEL, pod_name="pod-0", grace_s=0.1) as pod:
        gateway.route_to(pod)
        async with gateway.session.post(
            gateway.url + "/v1/completions", json=streamed("tell me a story", 500)
        ) as response:
            assert response.status == 200
            await asyncio.wait_for(response.content.readuntil(b"\n\n"), SETTLE_S)
            stopping = asyncio.create_task(pod.stop())
            got: list[bytes] = []
            with pytest.raises(aiohttp.ClientPayloadError):
                await read_into(got, response)
            await stopping

        assert b"[DONE]" not in b"".join(got)
        await gateway.settled()
    assert engine.generation_tokens < 500
    assert gateway.scheduled() == 1
    assert gateway.server_errors() == 0
    assert gateway.ended() == 0
    await gateway.still_serves()


@pytest.mark.parametrize("fault", ["refuses", "hangs-up"])
async def test_model_server_unreachable(
    gateway: Gateway, free_port_factory: Callable[[], int], fault: str
) -> None:
    async with broken_pod(fault, free_port_factory()) as pod:
        gateway.route_to(pod)
        status, body = await gateway.post(completion())

    assert status == 503
    assert body.startswith(b"upstream connect error or disconnect/reset before headers")
    # Envoy's own 503 passes the EPP's response path like a model server's answer.
    assert gateway.server_errors() == 1
    assert gateway.scheduled() == 1
    await gateway.still_serves()


@pytest.mark.parametrize("status", [500, 429])
async def test_model_server_error_reaches_the_client_unchanged(
    gateway: Gateway, status: int
) -> None:
    async with serve_pod(sim_engine(), model=MODEL, pod_name="pod-0") as pod:
        gateway.route_to(pod)
        headers = {"x-return-error": str(status)}
        async with gateway.session.post(
            pod.url + "/v1/completions", json=completion(), headers=headers
        ) as direct:
            direct_body = await direct.read()
        assert direct.status == status

        got_status, body = await gateway.post(completion(), **headers)

    assert got_status == status
    assert body == direct_body
    assert json.loads(body)["error"]["code"] == status
    assert gateway.server_errors() == 1
    assert gateway.scheduled() == 1
    await gateway.still_serves()


async def test_a_body_that_cannot_be_rewritten_is_refused_and_leaves_nothing(
    gateway: Gateway,
) -> None:
    # The model also appears nested, so the EPP cannot splice the rewritten name in and must
    # re-encode the body, which fails on a number beyond float range: found only after the
    # request was scheduled (and counted in flight by PreRequest).
    body = b'{"model": "m", "prompt": "p", "meta": {"model": "m"}, "n": 1e400}'
    async with ScriptedModelServer("pod-0") as pod:
        gateway.route_to(pod)
        async with gateway.session.post(
            gateway.url + "/v1/completions", data=body, headers=rewrite(ADAPTER)
        ) as response:
            text = await response.text()

        assert (response.status, text) == (
            500,
            "inference error: Internal - Error marshalling request body",
        )
        assert pod.received == []
    assert gateway.scheduled(ADAPTER) == 0
    await gateway.still_serves()


# --- Big and many ---------------------------------------------------------------------------


async def test_a_five_mib_prompt_arrives_byte_exact(gateway: Gateway) -> None:
    async with ScriptedModelServer("pod-0") as pod:
        gateway.route_to(pod)
        # An odd layout and non-ASCII text: the EPP must pass the bytes, not re-encode them.
        data = json.dumps(completion(FIVE_MIB_TEXT), indent=1, ensure_ascii=False).encode()
        assert len(data) > 5 * 2**20
        async with asyncio.timeout(60):
            async with gateway.session.post(
                gateway.url + "/v1/completions", data=io.BytesIO(data)
            ) as response:
                answer = await response.read()

    assert response.status == 200, answer
    [received] = pod.received
    assert received.body == data
    sizes = gateway.metric(
        "inference_objective_request_sizes_sum", model_name=MODEL, target_model_name=MODEL
    )
    assert sizes == len(data)
    await gateway.still_serves()


@pytest.mark.parametrize("target", TARGETS)
async def test_a_five_mib_answer_arrives_byte_exact(
    gateway: Gateway, mode: str, target: str
) -> None:
    def answer(received: Received) -> Answer:
        # Spaced separators, as Python writes JSON: the back-rewrite must find `"model": "t"`.
        body = json.dumps(
            {"object": "text_completion", "model": received.model,
             "choices": [{"index": 0, "text": FIVE_MIB_TEXT, "finish_reason": "length"}],
             "usage": {"prompt_tokens": 3, "completion_tokens": 70_000}},
            ensure_ascii=False,
        ).encode()  # fmt: skip
        step = 2**16
        chunks = tuple(body[i : i + step] for i in range(0, len(body), step))
        return Answer(chunks, content_length=True, pause_s=0.0)

    async with ScriptedModelServer("pod-0", answer=answer) as pod:
        gateway.route_to(pod)
        async with asyncio.timeout(60):
            status, got = await gateway.post(completion(), **rewrite(target))
        sent = b"".join(answer(pod.received[0]).chunks)

    assert status == 200
    assert len(got) > 5 * 2**20
    # Byte for byte what the pod sent, the model name written back to the client's.
    assert got == sent.replace(f'"model": "{target}"'.encode(), b'"model": "m"')
    reads = mode == "compatible" or target != MODEL
    assert gateway.ended(target) == reads
    output = {"model_name": MODEL, "target_model_name": target}
    assert gateway.metric("inference_objective_output_tokens_sum", **output) == 70_000 * reads
    await gateway.still_serves()


async def test_many_clients_at_once_some_leaving(gateway: Gateway) -> None:
    engines = [sim_engine(token_interval_s=0.005) for _ in range(3)]
    async with contextlib.AsyncExitStack() as stack:
        pods = [
            await stack.enter_async_context(serve_pod(e, model=MODEL, pod_name=f"pod-{i}"))
            for i, e in enumerate(engines)
        ]
        gateway.route_to(*pods)

        async def whole(i: int) -> None:
            status, body = await gateway.post(completion(f"question {i}", max_tokens=8))
            assert status == 200, body
            assert json.loads(body)["usage"]["completion_tokens"] == 8

        async def stream(i: int) -> None:
            status, body = await gateway.post(streamed(f"question {i}", 8))
            assert status == 200, body
            assert body.endswith(b"data: [DONE]\n\n")
            assert body.count(b"data: ") == 8 + 1

        async def leave_mid_stream(i: int) -> None:
            async with gateway.session.post(
                gateway.url + "/v1/completions", json=streamed(f"question {i}", 1000)
            ) as response:
                assert response.status == 200
                await response.content.readuntil(b"\n\n")
                response.close()

        async def leave_uploading(_: int) -> None:
            writer = (await gateway.start_upload())[1]
            await asyncio.sleep(0.05)
            writer.close()
            await writer.wait_closed()

        clients = (whole, stream, leave_mid_stream, stream, leave_uploading)
        async with asyncio.timeout(180):  # generous: nothing may hang
            await asyncio.gather(*(clients[i % 5](i) for i in range(200)))

        await gateway.settled()
        await wait_until(lambda: all(not e.running and not e.waiting for e in engines), SETTLE_S)
    # 40 of each kind; the uploads that never ended were never scheduled.
    assert gateway.scheduled() == 160
    assert sum(len(e.submitted) for e in engines) == 160
    assert all(e.submitted for e in engines)  # the load was spread over the pool
    assert sum(len(e.cancelled) for e in engines) == 40
    assert gateway.server_errors() == 0
    await gateway.still_serves()
