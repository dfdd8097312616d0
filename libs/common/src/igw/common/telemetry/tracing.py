"""OpenTelemetry tracing: a tracer provider configured from the standard `OTEL_*` variables, and
W3C propagation between Envoy, our services and the model servers.

Envoy puts `traceparent`/`tracestate` into the gRPC metadata of each ext_proc stream;
`extract_from_grpc_metadata` turns them into the parent context of the service's span, and
`inject_headers` gives the headers that carry a context on to an upstream request. Propagation is
always W3C TraceContext + Baggage, as upstream's, whatever `OTEL_PROPAGATORS` says.

`configure_tracing` reads, at call time:

* `OTEL_SERVICE_NAME`: overrides the service name the CLI passes;
  `OTEL_RESOURCE_ATTRIBUTES` adds resource attributes.
* `OTEL_TRACES_EXPORTER`: comma-separated `otlp` (OTLP/gRPC, plaintext unless the endpoint is
  `https://` or `OTEL_EXPORTER_OTLP_INSECURE` says otherwise), `console`, `none`. When unset:
  `otlp` if `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, else
  nothing. **This differs from upstream on purpose**: upstream prints every span to stdout when no
  collector is configured, which floods the logs. With nothing to export to, `configure_tracing`
  returns None and the services trace nothing, at no cost.
* `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`: `always_on`, `always_off`, `traceidratio`,
  `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio` (ratio default 1).
  The default is `parentbased_always_on`: a trace Envoy sampled is continued, one it dropped stays
  dropped, and a request arriving without a trace starts one.
* `OTEL_BSP_SCHEDULE_DELAY`: the batch export delay, 500 ms by default here (the SDK's is 5 s) so
  spans reach the collector soon after the request.

Global state: OpenTelemetry lets the global tracer provider be set once per process, so only the
CLIs ask for it (`install_global=True`); tests use the provider they are returned.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from igw.common.telemetry.logging import get_logger

__all__ = [
    "configure_tracing",
    "extract_from_grpc_metadata",
    "inject_headers",
    "shutdown_tracing",
    "tracer",
]

_log = get_logger(__name__)

_PROPAGATOR: Final = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])

_DEFAULT_SAMPLER: Final = "parentbased_always_on"
_DEFAULT_SCHEDULE_DELAY_MS: Final = 500.0

_FIXED_SAMPLERS: Final[Mapping[str, sampling.Sampler]] = {
    "always_on": sampling.ALWAYS_ON,
    "always_off": sampling.ALWAYS_OFF,
    "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
    "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
}
_RATIO_SAMPLERS: Final[Mapping[str, Callable[[float], sampling.Sampler]]] = {
    "traceidratio": sampling.TraceIdRatioBased,
    "parentbased_traceidratio": lambda ratio: sampling.ParentBased(
        sampling.TraceIdRatioBased(ratio)
    ),
}


def configure_tracing(
    service_name: str,
    *,
    enabled: bool = True,
    exporter: SpanExporter | None = None,
    service_version: str | None = None,
    install_global: bool = True,
) -> TracerProvider | None:
    """Build the tracer provider for a service, or None when tracing is off.

    With `exporter` (tests pass an `InMemorySpanExporter`), each span is handed to it synchronously
    as it ends; otherwise the exporters named by the environment get batches from a background
    thread. Raises `ValueError` on an unknown exporter, sampler or sampler ratio.
    """
    if not enabled:
        return None
    sampler = _sampler_from_env()  # first, so a bad setting fails before any exporter exists
    processors = _span_processors(exporter)
    if not processors:
        _log.info("tracing off: no exporter configured", hint="set OTEL_EXPORTER_OTLP_ENDPOINT")
        return None
    provider = TracerProvider(sampler=sampler, resource=_resource(service_name, service_version))
    for processor in processors:
        provider.add_span_processor(processor)
    if install_global:
        trace.set_tracer_provider(provider)
    return provider


def tracer(provider: TracerProvider | None, name: str) -> trace.Tracer:
    """The tracer `name` of `provider`; a no-op tracer when tracing is off (`provider` None)."""
    if provider is None:
        return trace.NoOpTracer()
    return provider.get_tracer(name)


def shutdown_tracing(provider: TracerProvider | None) -> None:
    """Export the spans still queued and stop the exporters; blocks until done or timed out."""
    if provider is None:
        return
    provider.shutdown()  # each span processor exports what it still holds before stopping


def extract_from_grpc_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> Context:
    """The trace context Envoy sent in an ext_proc call's metadata (`invocation_metadata()`).

    The result is based on an empty context, so a call without `traceparent` starts a new trace
    rather than joining whatever span happens to be current. Binary (`-bin`) entries are skipped:
    the W3C headers are text.
    """
    carrier = {key.lower(): value for key, value in metadata or () if isinstance(value, str)}
    return _PROPAGATOR.extract(carrier, context=Context())


def inject_headers(ctx: Context | None = None) -> dict[str, str]:
    """W3C `traceparent`/`tracestate`/`baggage` headers carrying `ctx` (default: current)."""
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers, context=ctx)
    return headers


def _span_processors(exporter: SpanExporter | None) -> list[SpanProcessor]:
    if exporter is not None:
        return [SimpleSpanProcessor(exporter)]
    # An explicit delay would override OTEL_BSP_SCHEDULE_DELAY; None lets the SDK read it.
    delay = None if os.environ.get("OTEL_BSP_SCHEDULE_DELAY") else _DEFAULT_SCHEDULE_DELAY_MS
    return [
        BatchSpanProcessor(env_exporter, schedule_delay_millis=delay)
        for env_exporter in _exporters_from_env()
    ]


def _resource(service_name: str, service_version: str | None) -> Resource:
    attributes = {SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service_name}
    if service_version:
        attributes[SERVICE_VERSION] = service_version
    # Resource.create also merges OTEL_RESOURCE_ATTRIBUTES; explicit attributes win over it.
    return Resource.create(attributes)


def _sampler_from_env() -> sampling.Sampler:
    name = (os.environ.get("OTEL_TRACES_SAMPLER") or _DEFAULT_SAMPLER).strip().lower()
    if name in _FIXED_SAMPLERS:
        return _FIXED_SAMPLERS[name]
    if name in _RATIO_SAMPLERS:
        return _RATIO_SAMPLERS[name](_sampler_ratio())
    known = ", ".join(sorted([*_FIXED_SAMPLERS, *_RATIO_SAMPLERS]))
    raise ValueError(f"OTEL_TRACES_SAMPLER={name!r} is not one of: {known}")


def _sampler_ratio() -> float:
    raw = os.environ.get("OTEL_TRACES_SAMPLER_ARG") or "1.0"
    try:
        ratio = float(raw)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"OTEL_TRACES_SAMPLER_ARG={raw!r} is not a ratio between 0 and 1")
    return ratio


def _otlp_exporter() -> SpanExporter:
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"
    )
    if protocol != "grpc":
        raise ValueError(f"OTLP protocol {protocol!r} is not supported; igw exports OTLP/gRPC")
    # Plaintext unless told otherwise, as in-cluster collectors usually are; an https:// endpoint
    # still gets TLS (the exporter decides that from the scheme).
    insecure = None if "OTEL_EXPORTER_OTLP_INSECURE" in os.environ else True
    return OTLPSpanExporter(insecure=insecure)


_EXPORTERS: Final[Mapping[str, Callable[[], SpanExporter | None]]] = {
    "otlp": _otlp_exporter,
    "console": ConsoleSpanExporter,
    "none": lambda: None,
}


def _exporters_from_env() -> list[SpanExporter]:
    setting = os.environ.get("OTEL_TRACES_EXPORTER", "").strip()
    if not setting:
        endpoint_set = any(
            os.environ.get(var)
            for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        )
        setting = "otlp" if endpoint_set else "none"
    names = [part.strip().lower() for part in setting.split(",") if part.strip()]
    unknown = [name for name in names if name not in _EXPORTERS]
    if unknown:
        known = ", ".join(sorted(_EXPORTERS))
        raise ValueError(f"OTEL_TRACES_EXPORTER entries {unknown} are not among: {known}")
    made = (_EXPORTERS[name]() for name in names)
    return [exporter for exporter in made if exporter is not None]
