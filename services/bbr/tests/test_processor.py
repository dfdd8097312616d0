"""igw.bbr.processor: the BodyRouter turning one request body into header changes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import msgspec
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from igw.bbr.adapters import AdapterIndex
from igw.bbr.metrics import BbrMetrics
from igw.bbr.models import ModelsEndpoint
from igw.bbr.plugins import Mutations, PluginHandle
from igw.bbr.processor import BodyRouter
from igw.bbr.registry import DEFAULT_PLUGINS, PluginRegistry, PluginSpec, parse_plugin_flag
from igw.common.envoy import BodyMode, HeaderChanges
from igw.common.errors import BadRequestError, ForbiddenError
from igw.common.extproc import PASS_THROUGH, HttpRequest, StreamInfo

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
MODEL = "x-gateway-model-name"
BASE = "x-gateway-base-model-name"


def router(
    specs: Sequence[PluginSpec] = DEFAULT_PLUGINS, *, models: bool = False
) -> tuple[BodyRouter, BbrMetrics]:
    """A router over one base model and its adapter; `models`: it serves `GET /v1/models`."""
    metrics = BbrMetrics()
    index = AdapterIndex()
    index.reconcile("default/llama", {"baseModel": LLAMA, "adapters": "[sql-lora]"})
    handle = PluginHandle(adapters=index, metrics=metrics)
    plugins = PluginRegistry.builtin().build(specs, handle)
    return BodyRouter(plugins, metrics, ModelsEndpoint(index) if models else None), metrics


def get(path: str, method: str = "GET") -> HttpRequest:
    return HttpRequest(
        headers={":method": method, ":path": path},
        body=b"",
        header_only=True,
        body_mode=BodyMode.FULL_DUPLEX_STREAMED,
    )


def post(body: bytes, **headers: str) -> HttpRequest:
    return HttpRequest(
        headers={":method": "POST", ":path": "/v1/chat/completions", **headers},
        body=body,
        header_only=False,
        body_mode=BodyMode.BUFFERED,
    )


def sample(metrics: BbrMetrics, name: str, labels: Mapping[str, str] | None = None) -> float:
    value = metrics.registry.get_sample_value(name, dict(labels or {}))
    return 0.0 if value is None else value


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(
            b'{"model": "sql-lora", "messages": []}',
            ((MODEL, "sql-lora"), (BASE, LLAMA)),
            id="adapter",
        ),
        pytest.param(
            b'{"model": "meta-llama/Llama-3.1-8B-Instruct"}',
            ((MODEL, LLAMA), (BASE, LLAMA)),
            id="base",
        ),
        pytest.param(b'{"model": "gpt-4"}', ((MODEL, "gpt-4"), (BASE, "")), id="unknown-model"),
        pytest.param(b'{"prompt": "hi"}', (), id="no-model"),
    ],
)
async def test_default_plugins_set_the_model_headers(
    body: bytes, headers: tuple[tuple[str, str], ...]
) -> None:
    bbr, _ = router()
    verdict = await bbr.request(post(body))
    assert verdict.headers == HeaderChanges(set=headers, remove=())
    # The BBR only adds headers: Envoy forwards the client's bytes untouched.
    assert verdict.body is None
    # Routes are re-matched on the new headers.
    assert verdict.clear_route_cache is True


async def test_a_client_supplied_model_header_is_overwritten() -> None:
    bbr, _ = router()
    verdict = await bbr.request(
        post(b'{"model": "sql-lora"}', **{MODEL: "spoofed", BASE: "spoofed"})
    )
    # HeaderChanges.set means overwrite (OVERWRITE_IF_EXISTS_OR_ADD on the wire).
    assert dict(verdict.headers.set) == {MODEL: "sql-lora", BASE: LLAMA}


async def test_success_and_plugin_durations_are_recorded() -> None:
    bbr, metrics = router()
    for _ in range(3):
        await bbr.request(post(b'{"model": "sql-lora"}'))
    assert sample(metrics, "bbr_success_total") == 3
    for spec in DEFAULT_PLUGINS:
        labels = {"extension_point": "request", "plugin_type": spec.type, "plugin_name": spec.name}
        assert sample(metrics, "bbr_plugin_duration_seconds_count", labels) == 3, spec
        assert sample(metrics, "bbr_plugin_duration_seconds_sum", labels) > 0, spec


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        pytest.param(b"{not json", "JSON is malformed", id="malformed"),
        pytest.param(b'{"model": "m"', "truncated", id="truncated"),
        pytest.param(b'{"model": "m"} trailing', "trailing characters", id="trailing-bytes"),
        pytest.param(b'["model"]', "the body must be a JSON object", id="array"),
        pytest.param(b'"model"', "the body must be a JSON object", id="string"),
        pytest.param(b"null", "the body must be a JSON object", id="null"),
        pytest.param(b"\xff\xfe", "", id="not-utf8"),
    ],
)
async def test_a_body_that_is_not_one_json_object_is_a_400(body: bytes, detail: str) -> None:
    bbr, metrics = router()
    with pytest.raises(BadRequestError) as info:
        await bbr.request(post(body))
    error = info.value
    assert error.status == 400
    assert error.body().startswith("inference error: BadRequest - failed to parse request body:")
    assert detail in error.body()
    assert sample(metrics, "bbr_success_total") == 0


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(
            HttpRequest(
                headers={":method": "GET", ":path": "/v1/models"},
                body=b"",
                header_only=True,
                body_mode=BodyMode.BUFFERED,
            ),
            # router() has no ModelsEndpoint: --serve-models-endpoint=false, upstream's way.
            id="get-models-with-the-endpoint-off",
        ),
        pytest.param(post(b""), id="empty-body"),
        pytest.param(post(b"", **{MODEL: "client-chosen"}), id="empty-body-keeps-client-header"),
    ],
)
async def test_requests_without_a_body_pass_through_unchanged(request_: HttpRequest) -> None:
    bbr, metrics = router()
    verdict = await bbr.request(request_)
    assert verdict == PASS_THROUGH
    assert not verdict.headers
    assert verdict.body is None
    assert verdict.clear_route_cache is False
    assert sample(metrics, "bbr_success_total") == 0


@pytest.mark.parametrize(
    ("path", "status", "ids"),
    [
        pytest.param("/v1/models", 200, [LLAMA, "sql-lora"], id="list"),
        pytest.param("/v1/models/sql-lora", 200, ["sql-lora"], id="retrieve"),
        pytest.param("/v1/models/gpt-4", 404, [], id="retrieve-unknown"),
    ],
)
async def test_models_requests_are_answered_by_the_bbr(
    path: str, status: int, ids: list[str]
) -> None:
    bbr, metrics = router(models=True)
    verdict = await bbr.request(get(path))
    assert verdict.answer is not None
    assert verdict.answer.status == status
    body = msgspec.json.decode(verdict.answer.body)
    models = body.get("data", [body] if "id" in body else [])
    assert [m["id"] for m in models] == ids
    # Not a processed body: upstream's success counter keeps its meaning.
    assert sample(metrics, "bbr_success_total") == 0


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(get("/v1/models", "HEAD"), id="head"),
        pytest.param(get("/v1/models", "POST"), id="post-without-body"),
        pytest.param(get("/v1/completions"), id="other-get"),
    ],
)
async def test_other_requests_without_a_body_still_pass_through(request_: HttpRequest) -> None:
    bbr, _ = router(models=True)
    assert await bbr.request(request_) == PASS_THROUGH


async def test_a_post_to_the_models_path_is_routed_as_any_body() -> None:
    bbr, _ = router(models=True)
    request_ = post(b'{"model": "sql-lora"}', **{":path": "/v1/models"})
    verdict = await bbr.request(request_)
    assert verdict.answer is None
    assert dict(verdict.headers.set) == {MODEL: "sql-lora", BASE: LLAMA}


ROUTE_FROM_MODEL = 'body-field-to-header:from-model:{"fieldName":"model","headerName":"x-route"}'
ROUTE_FROM_USER = 'body-field-to-header:from-user:{"fieldName":"user","headerName":"X-Route"}'


@pytest.mark.parametrize(
    ("flags", "body", "route"),
    [
        pytest.param(
            [ROUTE_FROM_MODEL, ROUTE_FROM_USER],
            b'{"model": "m", "user": "u"}',
            "u",
            id="later-wins",
        ),
        pytest.param(
            [ROUTE_FROM_USER, ROUTE_FROM_MODEL], b'{"model": "m", "user": "u"}', "m", id="order"
        ),
        # A later plugin that finds nothing leaves the earlier plugin's header in place.
        pytest.param([ROUTE_FROM_MODEL, ROUTE_FROM_USER], b'{"model": "m"}', "m", id="later-skips"),
    ],
)
async def test_plugins_run_in_configured_order(flags: list[str], body: bytes, route: str) -> None:
    bbr, _ = router([parse_plugin_flag(flag) for flag in flags])
    verdict = await bbr.request(post(body))
    assert verdict.headers.set == (("x-route", route),)


class Forbidding:
    """A plugin that rejects every request, to check that errors abort the chain."""

    type_name: ClassVar[str] = "forbid-header"
    fields = ("model",)

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],  # noqa: ARG003 - protocol
        handle: PluginHandle,  # noqa: ARG003 - protocol
    ) -> Forbidding:
        return cls(name)

    def process_request(
        self,
        fields: Mapping[str, msgspec.Raw],  # noqa: ARG002 - protocol
        headers: Mapping[str, str],  # noqa: ARG002 - protocol
        out: Mutations,  # noqa: ARG002 - protocol
    ) -> None:
        raise ForbiddenError("model not allowed")


async def test_a_plugin_error_fails_the_request_and_stops_the_chain() -> None:
    metrics = BbrMetrics()
    handle = PluginHandle(adapters=AdapterIndex(), metrics=metrics)
    registry = PluginRegistry.builtin(entry_points=False)
    registry.register(Forbidding)
    specs = [PluginSpec("forbid-header", "forbid"), *DEFAULT_PLUGINS]
    bbr = BodyRouter(registry.build(specs, handle), metrics)
    with pytest.raises(ForbiddenError, match="model not allowed"):
        await bbr.request(post(b'{"model": "m"}'))
    assert sample(metrics, "bbr_success_total") == 0
    # The later body-field-to-header never ran, so it counted nothing.
    labels = {
        "extension_point": "request",
        "plugin_type": "body-field-to-header",
        "plugin_name": "body-field-to-header",
    }
    assert sample(metrics, "bbr_plugin_duration_seconds_count", labels) == 0


async def test_no_plugins_still_validates_the_body() -> None:
    bbr, metrics = router([])
    verdict = await bbr.request(post(b'{"model": "m"}'))
    assert not verdict.headers
    assert verdict.body is None
    with pytest.raises(BadRequestError):
        await bbr.request(post(b"[]"))
    assert sample(metrics, "bbr_success_total") == 1


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


async def test_traced_streams_record_the_headers_on_the_span(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    bbr, _ = router()
    with provider.get_tracer("test").start_as_current_span("ext_proc") as span:
        exchange = bbr.exchange(StreamInfo(span=span))
        verdict = await exchange.request(post(b'{"model": "sql-lora"}'))
    assert dict(verdict.headers.set) == {MODEL: "sql-lora", BASE: LLAMA}
    [finished] = exporter.get_finished_spans()
    assert finished.attributes is not None
    assert finished.attributes[f"bbr.header.{MODEL}"] == "sql-lora"
    assert finished.attributes[f"bbr.header.{BASE}"] == LLAMA


def test_untraced_streams_share_the_router() -> None:
    bbr, _ = router()
    assert bbr.exchange(StreamInfo(span=None)) is bbr


async def test_a_traced_models_answer_records_its_status(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    bbr, _ = router(models=True)
    with provider.get_tracer("test").start_as_current_span("ext_proc") as span:
        verdict = await bbr.exchange(StreamInfo(span=span)).request(get("/v1/models/nope"))
    assert verdict.answer is not None
    [finished] = exporter.get_finished_spans()
    assert finished.attributes is not None
    assert finished.attributes["bbr.answer.status"] == 404
