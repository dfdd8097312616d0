"""igw.common.telemetry.tracing: W3C propagation, env-driven setup, OTLP export to a receiver."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

import grpc
import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from igw.common.telemetry.tracing import (
    configure_tracing,
    extract_from_grpc_metadata,
    inject_headers,
    shutdown_tracing,
    tracer,
)
from igw.common.testing.otlp import OtlpReceiver, OtlpSpanKind, ReceivedSpan

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"

InMemoryTracing = Callable[..., tuple[TracerProvider, InMemorySpanExporter]]


def traceparent(flags: str = "01") -> str:
    """A W3C traceparent as Envoy sends it; flags 01 = sampled, 00 = not sampled."""
    return f"00-{TRACE_ID}-{PARENT_ID}-{flags}"


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an environment without OTEL_* settings."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def in_memory() -> Iterator[InMemoryTracing]:
    """Builds providers that export to memory (after the test set its env); shuts them down."""
    providers: list[TracerProvider] = []

    def build(
        service_name: str = "igw-test", service_version: str | None = None
    ) -> tuple[TracerProvider, InMemorySpanExporter]:
        exporter = InMemorySpanExporter()
        provider = configure_tracing(
            service_name, exporter=exporter, service_version=service_version, install_global=False
        )
        assert provider is not None
        providers.append(provider)
        return provider, exporter

    yield build
    for provider in providers:
        shutdown_tracing(provider)


def end_one_span(
    provider: TracerProvider, metadata: Iterable[tuple[str, str | bytes]] | None
) -> trace.Span:
    """Start and end a server span under the context `metadata` carries, as a service would."""
    context = extract_from_grpc_metadata(metadata)
    with tracer(provider, "igw.test").start_as_current_span(
        "gateway.request", context=context, kind=trace.SpanKind.SERVER
    ) as span:
        return span


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    [span] = exporter.get_finished_spans()
    return span


# --- propagation ---------------------------------------------------------------------------------


def test_span_continues_the_trace_envoy_sent_in_grpc_metadata(in_memory: InMemoryTracing) -> None:
    provider, exporter = in_memory()
    # What grpc.aio's `context.invocation_metadata()` hands an ext_proc servicer.
    metadata = grpc.aio.Metadata(
        (":authority", "bbr"),
        ("traceparent", traceparent()),
        ("tracestate", ""),
        ("x-trace-bin", b"\x00\x01"),
    )
    end_one_span(provider, metadata)
    span = only_span(exporter)
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.parent.is_remote


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(None, id="no-metadata"),
        pytest.param([("x-request-id", "abc")], id="no-traceparent"),
        pytest.param([("traceparent", "not-a-traceparent")], id="malformed-traceparent"),
    ],
)
def test_call_without_a_usable_traceparent_starts_a_new_trace(
    in_memory: InMemoryTracing, metadata: Sequence[tuple[str, str | bytes]] | None
) -> None:
    provider, exporter = in_memory()
    end_one_span(provider, metadata)
    span = only_span(exporter)
    assert span.parent is None
    assert format(span.context.trace_id, "032x") != TRACE_ID


def test_extraction_ignores_the_span_current_in_the_server(in_memory: InMemoryTracing) -> None:
    # A stream handled while some other span is current must not be filed under that span.
    provider, exporter = in_memory()
    with tracer(provider, "igw.test").start_as_current_span("unrelated"):
        end_one_span(provider, [])
    request = next(s for s in exporter.get_finished_spans() if s.name == "gateway.request")
    assert request.parent is None


def test_inject_headers_carries_the_extracted_context_unchanged() -> None:
    context = extract_from_grpc_metadata([("traceparent", traceparent()), ("tracestate", "k=v")])
    assert inject_headers(context) == {"traceparent": traceparent(), "tracestate": "k=v"}


def test_inject_headers_defaults_to_the_current_span(in_memory: InMemoryTracing) -> None:
    provider, _ = in_memory()
    with tracer(provider, "igw.test").start_as_current_span("gateway.request") as span:
        headers = inject_headers()
    round_tripped = trace.get_current_span(extract_from_grpc_metadata(list(headers.items())))
    assert round_tripped.get_span_context().trace_id == span.get_span_context().trace_id
    assert round_tripped.get_span_context().span_id == span.get_span_context().span_id


def test_baggage_round_trips() -> None:
    context = baggage.set_baggage("tenant", "team-a", context=extract_from_grpc_metadata(None))
    headers = inject_headers(context)
    assert headers == {"baggage": "tenant=team-a"}
    extracted = extract_from_grpc_metadata(list(headers.items()))
    assert baggage.get_baggage("tenant", extracted) == "team-a"


def test_nothing_is_injected_without_a_trace() -> None:
    assert inject_headers(extract_from_grpc_metadata(None)) == {}


# --- configuration from the environment ---------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "parent_flags", "exported"),
    [
        pytest.param({}, "01", True, id="default-continues-sampled-trace"),
        pytest.param({}, "00", False, id="default-respects-envoy-dropping-trace"),
        pytest.param({}, None, True, id="default-samples-new-trace"),
        pytest.param({"OTEL_TRACES_SAMPLER": "always_off"}, "01", False, id="always-off"),
        pytest.param(
            {"OTEL_TRACES_SAMPLER": "always_on"}, "00", True, id="always-on-ignores-parent"
        ),
        pytest.param(
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
            "01",
            False,
            id="ratio-0-ignores-parent",
        ),
        pytest.param(
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"},
            None,
            True,
            id="ratio-1",
        ),
        pytest.param(
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
            "01",
            True,
            id="parentbased-ratio-follows-parent",
        ),
        pytest.param(
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
            None,
            False,
            id="parentbased-ratio-root",
        ),
        pytest.param(
            {"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, None, False, id="parentbased-off"
        ),
        pytest.param({"OTEL_TRACES_SAMPLER": "ALWAYS_OFF"}, None, False, id="case-insensitive"),
    ],
)
def test_sampler_follows_otel_traces_sampler(
    in_memory: InMemoryTracing,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    parent_flags: str | None,
    exported: bool,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    provider, exporter = in_memory()
    metadata = [] if parent_flags is None else [("traceparent", traceparent(parent_flags))]
    end_one_span(provider, metadata)
    assert len(exporter.get_finished_spans()) == int(exported)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        pytest.param({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER", id="sampler"),
        pytest.param(
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
            "OTEL_TRACES_SAMPLER_ARG",
            id="ratio-above-1",
        ),
        pytest.param(
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
            "OTEL_TRACES_SAMPLER_ARG",
            id="ratio-not-a-number",
        ),
        pytest.param({"OTEL_TRACES_EXPORTER": "otlp,zipkin"}, "zipkin", id="exporter"),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            "http/protobuf",
            id="otlp-over-http",
        ),
    ],
)
def test_invalid_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        configure_tracing("igw-test", install_global=False)


@pytest.mark.parametrize(
    ("enabled", "variables"),
    [
        pytest.param(
            False, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, id="disabled"
        ),
        pytest.param(True, {}, id="no-endpoint-no-exporter"),
        pytest.param(
            True,
            {
                "OTEL_TRACES_EXPORTER": "none",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
            },
            id="exporter-none",
        ),
    ],
)
def test_tracing_is_off_when_there_is_nowhere_to_export(
    monkeypatch: pytest.MonkeyPatch, enabled: bool, variables: dict[str, str]
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    provider = configure_tracing("igw-test", enabled=enabled, install_global=False)
    assert provider is None
    with tracer(provider, "igw.test").start_as_current_span("gateway.request") as span:
        assert not span.is_recording()
    shutdown_tracing(provider)


def test_resource_names_the_service(in_memory: InMemoryTracing) -> None:
    provider, exporter = in_memory("igw-bbr", service_version="v1.2.3")
    end_one_span(provider, None)
    attributes = only_span(exporter).resource.attributes
    assert attributes["service.name"] == "igw-bbr"
    assert attributes["service.version"] == "v1.2.3"


def test_environment_overrides_service_name_and_adds_attributes(
    in_memory: InMemoryTracing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "bbr-canary")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    provider, exporter = in_memory("igw-bbr")
    end_one_span(provider, None)
    attributes = only_span(exporter).resource.attributes
    assert attributes["service.name"] == "bbr-canary"
    assert attributes["deployment.environment"] == "staging"


# --- OTLP export, end to end ---------------------------------------------------------------------


async def test_otlp_endpoint_alone_exports_batches_to_the_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "bbr-under-test")
        provider = configure_tracing("igw-bbr", install_global=False)
        assert provider is not None
        try:
            context = extract_from_grpc_metadata([("traceparent", traceparent())])
            with tracer(provider, "igw.test").start_as_current_span(
                "gateway.request",
                context=context,
                kind=trace.SpanKind.SERVER,
                attributes={"target_model": "llama", "request_prio": 2},
            ) as span:
                span_id = format(span.get_span_context().span_id, "016x")
            # 3 s is well above the 500 ms batch delay and well below the SDK's own 5 s default.
            spans = await receiver.wait_for(lambda spans: len(spans) >= 1, timeout=3.0)
        finally:
            # Shutdown blocks on a final export to the receiver, which runs on this loop.
            await asyncio.to_thread(shutdown_tracing, provider)
    assert spans == [
        ReceivedSpan(
            service_name="bbr-under-test",
            name="gateway.request",
            trace_id=TRACE_ID,
            span_id=span_id,
            parent_span_id=PARENT_ID,
            kind=OtlpSpanKind.SERVER,
            attributes={"target_model": "llama", "request_prio": 2},
        )
    ]


async def test_receiver_timeout_lists_the_spans_it_did_get() -> None:
    received = ReceivedSpan(
        service_name="inference-gateway",
        name="ingress",
        trace_id=TRACE_ID,
        span_id=PARENT_ID,
        parent_span_id="",
        kind=OtlpSpanKind.SERVER,
        attributes={},
    )
    async with OtlpReceiver() as receiver:
        await receiver.add([received])
        assert await receiver.wait_for(lambda spans: len(spans) == 1, timeout=1.0) == [received]
        with pytest.raises(TimeoutError, match=r"received 1:\n  inference-gateway 'ingress'"):
            await receiver.wait_for(lambda spans: len(spans) == 2, timeout=0.1)
