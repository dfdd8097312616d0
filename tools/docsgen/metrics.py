"""The metrics reference, read from the collectors the services register.

The EPP and the BBR are built as their CLIs build them (options from `parse_args`), without
being started, and every collector on their registries is listed: name as exposed, type, labels
and help text. The EPP runs the flow-control example (`examples/flow-control/epp.yaml`), so the
flow-control metrics, registered only with the feature gate on, are included, plus the plugins
whose metrics exist only where they are configured (`OPTIONAL_METRIC_PLUGINS`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from igw.bbr.cli import parse_args as bbr_args
from igw.bbr.server import BbrService
from igw.epp.cli import parse_args as epp_args
from igw.epp.server import EppService
from tools.docsgen._markdown import GENERATED_NOTE, code, table

__all__ = ["PAGE", "MetricDoc", "metrics_page", "service_metrics"]

PAGE = "reference/metrics.md"
OPTIONAL_METRIC_PLUGINS = ("online-latency-producer", "request-latency-reporter")
"""Plugin types that register metric families of their own when configured."""
ROOT = Path(__file__).resolve().parents[2]
_OFFLINE = ["--metrics-endpoint-auth=false", "--tracing=false", "--secure-serving=false"]


@dataclass(frozen=True, slots=True)
class MetricDoc:
    name: str
    """As a scrape shows it (counters with `_total`; histograms add `_bucket`, `_sum`, `_count`)."""
    type: str
    labels: tuple[str, ...]
    help: str


def _labels(collector: Collector, family_labels: Iterable[str]) -> tuple[str, ...]:
    # igw's hot-path metrics say `labelnames`, prometheus_client's `_labelnames`; a custom
    # collector's families carry their own (GaugeMetricFamily(labels=...)).
    for attribute in ("labelnames", "_labelnames"):
        names = getattr(collector, attribute, None)
        if names is not None:
            return tuple(names)
    return tuple(family_labels)


def _collected(registry: CollectorRegistry) -> Iterator[MetricDoc]:
    collectors = list(registry._collector_to_names)
    for collector in collectors:
        for family in collector.collect():
            labels = _labels(collector, getattr(family, "_labelnames", ()))
            name = f"{family.name}_total" if family.type == "counter" else family.name
            yield MetricDoc(name, family.type, labels, family.documentation)


def _with_optional_plugins(example: Path) -> str:
    text = example.read_text()
    extra = "".join(f"- type: {name}\n" for name in OPTIONAL_METRIC_PLUGINS)
    return text.replace("plugins:\n", "plugins:\n" + extra, 1)


def service_metrics() -> dict[str, list[MetricDoc]]:
    """Service name -> its metrics, sorted by name."""
    with tempfile.TemporaryDirectory() as tmp:
        endpoints = Path(tmp) / "endpoints.yaml"
        endpoints.write_text("endpoints:\n- {name: pod-0, address: 127.0.0.1, port: 8000}\n")
        config = Path(tmp) / "epp.yaml"
        config.write_text(_with_optional_plugins(ROOT / "examples" / "flow-control" / "epp.yaml"))
        epp_options, _ = epp_args(
            ["--endpoints-file", str(endpoints), "--config-file", str(config), *_OFFLINE]
        )
        epp = EppService(epp_options)
        bbr_options, _ = bbr_args([*_OFFLINE, "--kubernetes=off"])
        bbr = BbrService(bbr_options)
        return {
            "igw-epp": sorted(_collected(epp.registry), key=lambda m: m.name),
            "igw-bbr": sorted(_collected(bbr.metrics.registry), key=lambda m: m.name),
        }


def metrics_page() -> str:
    parts = [
        GENERATED_NOTE,
        "# Metrics",
        (
            "Every metric the services register, as `/metrics` exposes it (the EPP on "
            "`--metrics-port`, 9090 by default; the BBR on its own, 9090 in its pod, 9091 in "
            "`make run`). Names and labels are upstream GIE's. A histogram also exposes "
            "`_bucket`, `_sum` and `_count` series. The flow-control metrics exist only with "
            "`featureGates: [flowControl]`; the predicted-TTFT histogram only with "
            "`online-latency-producer` (the `learned-latency` profile); the measured TTFT, TPOT "
            "and SLO-violation families only with `request-latency-reporter`. The dashboards "
            "and autoscaling that use them: "
            "[Dashboards](../guides/dashboards.md), [Autoscaling](../guides/autoscaling.md)."
        ),
    ]
    for service, metrics in service_metrics().items():
        rows = [
            (code(m.name), m.type, ", ".join(code(label) for label in m.labels), m.help)
            for m in metrics
        ]
        parts += [f"## `{service}`", table(("Name", "Type", "Labels", "Meaning"), rows)]
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"
