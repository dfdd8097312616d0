"""Response side: usage metrics, model back-rewrite, served endpoint, completion exactly once."""

from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from igw.common.envoy import NO_CHANGES, BodyMode, HeaderChanges
from igw.common.extproc import Stream, StreamInfo
from igw.common.testing import messages
from igw.epp.endpoints import Endpoint, InferenceRequest
from igw.epp.framework import Response, SchedulerMetrics
from igw.epp.requestcontrol import RequestControl
from igw.epp.requestpath import Director, EppExchange, ModelBackRewrite
from igw.epp.requestpath.exchange import header_changes
from igw.epp.testing.builders import endpoint
from igw.epp.testing.fakes import FakePlugin
from igw.epp.testing.requestpath import build_director, build_exchanges

DUPLEX = BodyMode.FULL_DUPLEX_STREAMED
CHAT = {":method": "POST", ":path": "/v1/chat/completions"}
IDLE = endpoint("pod-1-rank-0", address="10.0.0.2")
OTHER = endpoint("pod-2-rank-0", address="10.0.0.3", waiting=5)
SSE = (
    b'data: {"model":"t","choices":[{"delta":{"content":"hi"}}]}\n\n'
    b'data: {"model":"t","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,'
    b'"total_tokens":7,"prompt_tokens_details":{"cached_tokens":3}}}\n\ndata: [DONE]\n\n'
)
JSON = b'{"model": "t","usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}'


class Completions(FakePlugin):
    """A ResponseComplete plugin that records its calls."""

    type_name = "recording-complete"

    def __init__(self) -> None:
        super().__init__("recording")
        self.calls: list[tuple[str, str]] = []

    def response_complete(self, request: InferenceRequest, served: Endpoint) -> None:
        self.calls.append((request.request_id, served.name))


def body(stream: bool = False) -> bytes:
    content = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": stream}
    return orjson.dumps(content)


async def open_stream(
    director: Director,
    *,
    rewrite: str | None = None,
    stream: bool = False,
    response_mode: BodyMode = DUPLEX,
    sample_rate: float = 1.0,
    follow_responses: bool = False,
) -> tuple[Stream, EppExchange]:
    exchanges = build_exchanges(
        director, response_sample_rate=sample_rate, follow_responses=follow_responses
    )
    exchange = exchanges(StreamInfo(span=None))
    s = Stream(exchange, DUPLEX, response_mode)
    headers = {**CHAT, "x-request-id": "r1"}
    if rewrite is not None:
        headers["x-gateway-model-name-rewrite"] = rewrite
    await s.handle(messages.request_headers(headers))
    await s.handle(messages.request_body(body(stream), end_of_stream=True))
    return s, exchange


async def respond(
    s: Stream, chunks: Sequence[bytes], headers: dict[str, str] | None = None, **kw: Any
) -> bytes:
    head = headers or {":status": "200", "content-type": "application/json"}
    replies = messages.describe_all(await s.handle(messages.response_headers(head, **kw)))
    assert replies[0].set_headers == {}  # no x-went-into-resp-headers marker (quirk #12 fixed)
    out = b""
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        views = messages.describe_all(
            await s.handle(messages.response_body(chunk, end_of_stream=last))
        )
        out += messages.streamed_body(views)
    return out


def sample(director: Director, name: str, **labels: str) -> float | None:
    return director.metrics.registry.get_sample_value(name, labels)


MODELS = {"model_name": "m", "target_model_name": "t"}


async def test_json_usage_and_back_rewrite_over_split_chunks() -> None:
    director = build_director([IDLE])
    s, _ = await open_stream(director, rewrite="t")
    out = await respond(s, [JSON[:8], JSON[8:13], JSON[13:]])
    assert out == JSON.replace(b'"model": "t"', b'"model": "m"')
    assert sample(director, "inference_objective_input_tokens_sum", **MODELS) == 4
    assert sample(director, "inference_objective_output_tokens_sum", **MODELS) == 2
    assert sample(director, "inference_objective_request_duration_seconds_count", **MODELS) == 1


async def test_sse_usage_counted_and_model_rewritten_per_chunk() -> None:
    director = build_director([IDLE])
    s, _ = await open_stream(director, rewrite="t", stream=True)
    sse_headers = {":status": "200", "content-type": "text/event-stream"}
    cut = SSE.index(b"\n\n") + 2
    # The second event (with the usage) is split mid-line: the usage is still found.
    out = await respond(s, [SSE[:cut], SSE[cut : cut + 40], SSE[cut + 40 :]], sse_headers)
    assert out == SSE.replace(b'"model":"t"', b'"model":"m"')
    assert sample(director, "inference_objective_input_tokens_sum", **MODELS) == 5
    assert sample(director, "inference_objective_prompt_cached_tokens_sum", **MODELS) == 3


async def test_body_passes_unchanged_without_rewrite() -> None:
    director = build_director([IDLE])
    s, _ = await open_stream(director)
    assert await respond(s, [b"not json", b" at all"]) == b"not json at all"


def test_back_rewrite_both_spacings() -> None:
    rewrite = ModelBackRewrite("t", 'a"b')
    assert rewrite(b'{"model":"t"} {"model": "t"}') == b'{"model":"a\\"b"} {"model": "a\\"b"}'


@pytest.mark.parametrize("completed", [True, False], ids=["completed", "client-disconnected"])
async def test_completion_hooks_run_exactly_once(completed: bool) -> None:
    recorder = Completions()
    control = RequestControl(SchedulerMetrics(), response_complete=[recorder])
    director = build_director([IDLE], request_control=control)
    s, exchange = await open_stream(director)
    if completed:
        await respond(s, [JSON])
    exchange.close(completed)
    exchange.close(completed)
    assert recorder.calls == [("r1", "pod-1-rank-0")]
    assert sample(director, "inference_objective_running_requests", model_name="m") == 0


TWO_PICKS = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- {type: queue-scorer}
- {type: max-score-picker, parameters: {maxNumOfEndpoints: 2}}
schedulingProfiles:
- name: default
  plugins: [{pluginRef: queue-scorer}, {pluginRef: max-score-picker}]
"""


async def test_served_fallback_endpoint_gets_the_completion() -> None:
    recorder = Completions()
    control = RequestControl(SchedulerMetrics(), response_complete=[recorder])
    director = build_director([IDLE, OTHER], config=TWO_PICKS, request_control=control)
    s, exchange = await open_stream(director)
    served = {"envoy.lb": {"x-gateway-destination-endpoint-served": "10.0.0.3:8000"}}
    await s.handle(messages.response_headers({":status": "200"}, metadata=served))
    exchange.close(False)
    assert exchange.life.served_endpoint == "10.0.0.3:8000"
    assert recorder.calls == [("r1", "pod-2-rank-0")]


async def test_non_200_counts_a_model_server_error() -> None:
    director = build_director([IDLE])
    s, _ = await open_stream(director)
    await respond(s, [b"oops"], {":status": "503"})
    labels = {"model_name": "m", "target_model_name": "m", "error_code": "ModelServerError"}
    assert sample(director, "inference_objective_request_error_total", **labels) == 1


LEAN = BodyMode.STREAMED
SSE_HEADERS = {":status": "200", "content-type": "text/event-stream"}


async def test_lean_skips_the_body_and_finishes_the_request_at_response_start() -> None:
    recorder = Completions()
    control = RequestControl(SchedulerMetrics(), response_complete=[recorder])
    director = build_director([IDLE], request_control=control)
    s, exchange = await open_stream(director, stream=True, response_mode=LEAN, sample_rate=0.0)

    [reply] = messages.describe_all(await s.handle(messages.response_headers(SSE_HEADERS)))

    assert reply.skip_body
    # In flight no longer, before any response end (none will be seen): nothing leaks.
    assert recorder.calls == [("r1", "pod-1-rank-0")]
    assert sample(director, "inference_objective_running_requests", model_name="m") == 0
    exchange.close(s.completed)
    assert recorder.calls == [("r1", "pod-1-rank-0")]
    assert exchange.life.body_skipped
    assert sample(director, "inference_objective_request_duration_seconds_count", **MODELS) is None


async def lean_response(s: Stream, chunks: Sequence[bytes]) -> tuple[bool, bytes]:
    """Whether the body was skipped, and the body the client gets (STREAMED-mode replies)."""
    [head] = messages.describe_all(await s.handle(messages.response_headers(SSE_HEADERS)))
    out = b""
    for i, chunk in enumerate(chunks):
        message = messages.response_body(chunk, end_of_stream=i == len(chunks) - 1)
        [view] = messages.describe_all(await s.handle(message))
        out += chunk if view.body is None else view.body
    return head.skip_body, out


async def test_lean_reads_the_body_when_the_model_must_be_written_back() -> None:
    director = build_director([IDLE])
    s, exchange = await open_stream(
        director, rewrite="t", stream=True, response_mode=LEAN, sample_rate=0.0
    )

    skipped, out = await lean_response(s, [SSE[:30], SSE[30:]])

    assert not skipped
    assert out == SSE.replace(b'"model":"t"', b'"model":"m"')
    assert exchange.life.response_done


async def test_lean_sampled_response_counts_usage() -> None:
    director = build_director([IDLE])
    s, _ = await open_stream(director, stream=True, response_mode=LEAN, sample_rate=1.0)

    skipped, out = await lean_response(s, [SSE])

    assert (skipped, out) == (False, SSE)
    models = {"model_name": "m", "target_model_name": "m"}
    assert sample(director, "inference_objective_input_tokens_sum", **models) == 5
    assert sample(director, "inference_objective_request_duration_seconds_count", **models) == 1


async def test_lean_follows_each_response_to_its_end_for_an_in_flight_detector() -> None:
    # A concurrency-detector gates on requests in flight: the slot is held to the last byte.
    recorder = Completions()
    control = RequestControl(SchedulerMetrics(), response_complete=[recorder])
    director = build_director([IDLE], request_control=control)
    s, exchange = await open_stream(
        director, stream=True, response_mode=LEAN, sample_rate=0.0, follow_responses=True
    )

    [head] = messages.describe_all(await s.handle(messages.response_headers(SSE_HEADERS)))
    assert not head.skip_body
    await s.handle(messages.response_body(SSE[:30], end_of_stream=False))
    assert recorder.calls == []
    assert sample(director, "inference_objective_running_requests", model_name="m") == 1
    await s.handle(messages.response_body(SSE[30:], end_of_stream=True))
    exchange.close(s.completed)  # the servicer closes the exchange once the stream has ended
    assert recorder.calls == [("r1", "pod-1-rank-0")]
    assert sample(director, "inference_objective_running_requests", model_name="m") == 0
    assert not exchange.life.body_skipped


async def test_sample_rate_reads_about_that_share() -> None:
    exchanges = build_exchanges(build_director([IDLE]), response_sample_rate=0.25)
    read = sum(exchanges.sample_response() for _ in range(4000))
    assert 850 < read < 1150


@pytest.mark.parametrize("rate", [-0.1, 1.5], ids=["negative", "above-one"])
def test_sample_rate_out_of_range_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="sample rate"):
        build_exchanges(build_director(), response_sample_rate=rate)


RESPONSE_PLUGINS = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- {type: queue-scorer}
- {type: destination-endpoint-served-verifier}
- type: request-attribute-reporter
  parameters:
    attributes:
    - key: {name: x-gateway-inference-request-cost}
      expression: usage.prompt_tokens + usage.completion_tokens * 2.0
"""
SERVED_AT = {"envoy.lb": {"x-gateway-destination-endpoint-served": "10.0.0.2:8000"}}
COST = {"envoy.lb": {"x-gateway-inference-request-cost": 9}}  # 5 + 2 x 2 from `SSE`


class BodyRecorder(FakePlugin):
    """A ResponseBody plugin that records each call's flags and usage."""

    type_name = "recording-body"

    def __init__(self) -> None:
        super().__init__("recording")
        self.calls: list[tuple[bool, bool, int | None]] = []

    def response_body(
        self, request: InferenceRequest, response: Response, served: Endpoint | None
    ) -> None:
        del request, served  # unused: part of the protocol
        usage = response.usage.total_tokens if response.usage is not None else None
        self.calls.append((response.start_of_stream, response.end_of_stream, usage))


@pytest.mark.parametrize("response_mode", [DUPLEX, LEAN], ids=["full-duplex", "lean"])
async def test_header_plugins_see_the_served_endpoint_and_the_client_gets_their_header(
    response_mode: BodyMode,
) -> None:
    director = build_director([IDLE], config=RESPONSE_PLUGINS)
    s, _ = await open_stream(director, stream=True, response_mode=response_mode)

    [reply] = messages.describe_all(
        await s.handle(messages.response_headers(SSE_HEADERS, metadata=SERVED_AT))
    )

    assert reply.set_headers == {"x-conformance-test-served-endpoint": "10.0.0.2:8000"}


async def test_header_plugins_without_served_metadata_say_so() -> None:
    director = build_director([IDLE], config=RESPONSE_PLUGINS)
    s, _ = await open_stream(director)

    [reply] = messages.describe_all(await s.handle(messages.response_headers(SSE_HEADERS)))

    assert reply.set_headers == {
        "x-conformance-test-served-endpoint": "fail: missing envoy lb metadata"
    }


@pytest.mark.parametrize("response_mode", [DUPLEX, LEAN], ids=["full-duplex", "lean"])
async def test_body_plugin_metadata_rides_on_the_last_body_reply(response_mode: BodyMode) -> None:
    director = build_director([IDLE], config=RESPONSE_PLUGINS)
    s, exchange = await open_stream(
        director, stream=True, response_mode=response_mode, sample_rate=0.0
    )
    cut = SSE.index(b"\n\n") + 2

    [head] = messages.describe_all(await s.handle(messages.response_headers(SSE_HEADERS)))
    first = messages.describe_all(
        await s.handle(messages.response_body(SSE[:cut], end_of_stream=False))
    )
    last = messages.describe_all(
        await s.handle(messages.response_body(SSE[cut:], end_of_stream=True))
    )

    assert not head.skip_body
    assert [r.dynamic_metadata for r in first] == [{}]
    assert [r.dynamic_metadata for r in last] == [COST]
    exchange.close(s.completed)


async def test_body_plugins_see_each_chunk_then_one_end_with_usage() -> None:
    recorder = BodyRecorder()
    control = RequestControl(SchedulerMetrics(), response_body=[recorder])
    director = build_director([IDLE], request_control=control)
    s, exchange = await open_stream(director, stream=True)
    cut = SSE.index(b"\n\n") + 2

    await respond(s, [SSE[:cut], SSE[cut:]], SSE_HEADERS)
    exchange.close(True)

    assert recorder.calls == [(True, False, None), (False, True, 7)]


async def test_body_plugins_get_their_end_when_the_client_goes_away() -> None:
    recorder = BodyRecorder()
    control = RequestControl(SchedulerMetrics(), response_body=[recorder])
    director = build_director([IDLE], request_control=control)
    s, exchange = await open_stream(director, stream=True)
    await s.handle(messages.response_headers(SSE_HEADERS))
    await s.handle(messages.response_body(SSE[:20], end_of_stream=False))

    exchange.close(False)
    exchange.close(False)

    assert recorder.calls == [(True, False, None), (False, True, None)]


async def test_without_response_plugins_nothing_is_added() -> None:
    director = build_director([IDLE])
    s, exchange = await open_stream(director, stream=True)

    [head] = messages.describe_all(
        await s.handle(messages.response_headers(SSE_HEADERS, metadata=SERVED_AT))
    )
    last = messages.describe_all(await s.handle(messages.response_body(SSE, end_of_stream=True)))

    assert head.set_headers == {}
    assert [r.dynamic_metadata for r in last] == [{}]
    assert exchange.response_dynamic_metadata() is None


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param({":status": "200", "a": "1"}, NO_CHANGES, id="unchanged"),
        pytest.param({":status": "200", "a": "2", "X-New": "n"},
                     HeaderChanges(set=(("a", "2"), ("x-new", "n"))), id="changed-and-added"),
        pytest.param({":status": "200"}, HeaderChanges(remove=("a",)), id="removed"),
        # Pseudo-headers are Envoy's: a plugin cannot change or drop the status.
        pytest.param({":status": "500", "a": "1"}, NO_CHANGES, id="status-read-only"),
        pytest.param({"a": "1"}, NO_CHANGES, id="status-not-removed"),
    ],
)  # fmt: skip
def test_header_changes(after: dict[str, str], expected: HeaderChanges) -> None:
    assert header_changes({":status": "200", "a": "1"}, after) == expected
