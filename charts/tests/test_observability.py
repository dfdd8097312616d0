"""The EPP chart's Grafana dashboard and autoscaling objects: they may reference only series our
services export, named by the services' own metric classes on fresh registries."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from igw.bbr.metrics import BbrMetrics
from igw.epp.datalayer.pool_metrics import PoolMetricsCollector
from igw.epp.endpoints import EndpointState
from igw.epp.flowcontrol.metrics import FlowControlMetrics
from igw.epp.framework.metrics import SchedulerMetrics
from igw.epp.requestpath.metrics import RequestMetrics

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "epp"
DASHBOARD = CHART / "dashboards" / "igw.json"
ADAPTER_RULES = ROOT / "examples" / "autoscaling" / "prometheus-adapter-rules.yaml"

Obj = dict[str, Any]
Helm = Callable[..., subprocess.CompletedProcess[str]]
Render = Callable[..., list[Obj]]

POOL = "llama"
NS = "serving"
BASE = ("--set", "inferencePool.modelServers.matchLabels.app=vllm-llama")
DASH_ON = ("--set", "grafana.dashboard.enabled=true")
TARGET = "vllm-llama"


def autoscaling(kind: str, *extra: str) -> tuple[str, ...]:
    sets = [
        "autoscaling.enabled=true",
        f"autoscaling.kind={kind}",
        f"autoscaling.target.name={TARGET}",
        *extra,
    ]
    return tuple(a for s in sets for a in ("--set", s))


@pytest.fixture
def render_epp(render: Render) -> Render:
    """`render_epp(*args)`: `charts/epp` for the pool `llama`, model servers selected."""

    def render_epp(*args: str) -> list[Obj]:
        return render("epp", *BASE, *args)

    return render_epp


def of_kind(docs: list[Obj], kind: str) -> list[Obj]:
    return [d for d in docs if d["kind"] == kind]


# --- the metric names our services export ------------------------------------------------------


class _NoEndpoints:
    def endpoints(self) -> Sequence[EndpointState]:
        return []


_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
    "info": ("_info",),
}


def _series_names(registry: CollectorRegistry) -> set[str]:
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + s for s in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def exported() -> set[str]:
    """Every series name the EPP and the BBR expose, with Prometheus' suffixes."""
    epp = CollectorRegistry()
    RequestMetrics(epp)
    SchedulerMetrics(epp)
    FlowControlMetrics(epp)
    epp.register(PoolMetricsCollector(POOL, _NoEndpoints()))
    bbr = CollectorRegistry()
    BbrMetrics(bbr)
    return _series_names(epp) | _series_names(bbr)


# --- the dashboard -------------------------------------------------------------------------------

_SELECTED = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]")
_SUFFIXED = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*_(?:total|bucket|sum|count))\b")
_OURS = re.compile(r"\b((?:inference|bbr)_[a-zA-Z0-9_:]+)\b")
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[,)]")


def dashboard() -> Obj:
    loaded: Obj = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(dash: Obj) -> list[Obj]:
    out: list[Obj] = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def expressions(dash: Obj) -> list[str]:
    exprs = [t["expr"] for p in _panels(dash) for t in p.get("targets", [])]
    for var in dash["templating"]["list"]:
        query = var.get("query")
        if var["type"] == "query":
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


_LABEL_LISTS = re.compile(r"\{[^}]*\}|\b(?:by|without)\s*\([^)]*\)")


def metric_names(expr: str) -> set[str]:
    """The series an expression reads (label names in matchers and groupings are not series)."""
    expr = _LABEL_LISTS.sub(lambda m: "{}" if m.group().startswith("{") else "", expr)
    names = {m for m in _SELECTED.findall(expr) if not m.startswith("$")}
    names |= set(_SUFFIXED.findall(expr)) | set(_OURS.findall(expr))
    names |= set(_LABEL_VALUES.findall(expr))
    return names


def test_the_exported_set_is_what_the_sources_define() -> None:
    names = exported()
    assert {
        "inference_objective_request_total",
        "inference_objective_request_error_total",
        "inference_objective_request_duration_seconds_bucket",
        "inference_extension_scheduler_e2e_duration_seconds_count",
        "inference_pool_average_queue_size",
        "inference_pool_average_kv_cache_utilization",
        "inference_pool_per_pod_queue_size",
        "bbr_success_total",
        "bbr_body_field_not_found_total",
    } <= names
    # Counters are exposed with `_total` only.
    assert "inference_objective_request" not in names
    assert "bbr_success" not in names


def test_dashboard_references_only_exported_metrics() -> None:
    names = exported()
    dash = dashboard()
    exprs = expressions(dash)
    assert exprs
    used: set[str] = set()
    for expr in exprs:
        found = metric_names(expr)
        assert found, f"no metric found in {expr!r}"
        unknown = found - names
        assert not unknown, f"{expr!r} uses series no service exports: {sorted(unknown)}"
        used |= found
    # The panels the issue asks for.
    assert {
        "inference_objective_request_total",
        "inference_objective_request_error_total",
        "inference_objective_request_duration_seconds_bucket",
        "inference_objective_normalized_time_per_output_token_seconds_bucket",
        "inference_pool_average_queue_size",
        "inference_pool_average_kv_cache_utilization",
        "inference_pool_per_pod_queue_size",
        "inference_extension_scheduler_e2e_duration_seconds_bucket",
        "inference_extension_plugin_duration_seconds_bucket",
        "inference_extension_prefix_indexer_hit_ratio_sum",
        "bbr_success_total",
        "bbr_body_field_not_found_total",
        "inference_extension_flow_control_queue_size",
        "inference_extension_flow_control_queue_bytes",
        "inference_extension_flow_control_request_queue_duration_seconds_bucket",
        "inference_extension_flow_control_pool_saturation",
        "inference_extension_flow_control_dispatch_cycle_duration_seconds_bucket",
    } <= used


def test_metric_extraction() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le) (rate(foo_seconds_bucket{a="b"}[$__rate_interval])))'
    ) == {"foo_seconds_bucket"}
    assert metric_names("sum(rate(x_total[5m])) / sum(bar)") == {"x_total"}
    assert metric_names("max by (name) (inference_pool_ready_pods)") == {
        "inference_pool_ready_pods"
    }
    assert metric_names(
        'sum by (inference_pool) (inference_extension_x{inference_pool=~"$pool"})'
    ) == {"inference_extension_x"}


def test_dashboard_uses_a_datasource_variable() -> None:
    dash = dashboard()
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels(dash):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    ids = [p["id"] for p in _panels(dash)]
    assert len(ids) == len(set(ids))


# --- the chart -----------------------------------------------------------------------------------


def test_disabled_by_default_renders_nothing_new(render_epp: Render) -> None:
    docs = render_epp()
    assert not of_kind(docs, "ScaledObject")
    assert not of_kind(docs, "HorizontalPodAutoscaler")
    assert not [
        d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")
    ]
    # Enabling autoscaling with no kind-specific flags still needs the switch.
    assert not of_kind(render_epp("--set", f"autoscaling.target.name={TARGET}"), "ScaledObject")


def test_dashboard_configmap_holds_the_json(render_epp: Render) -> None:
    maps = [
        d
        for d in of_kind(render_epp(*DASH_ON), "ConfigMap")
        if d["metadata"]["name"] == "llama-epp-dashboard"
    ]
    assert len(maps) == 1
    cm = maps[0]
    assert cm["metadata"]["namespace"] == NS
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["igw.json"]) == dashboard()


def test_dashboard_configmap_namespace_and_labels(render_epp: Render) -> None:
    docs = render_epp(
        *DASH_ON,
        "--set", "grafana.dashboard.namespace=monitoring",
        "--set", "grafana.dashboard.labels.grafana_folder=Inference",
    )  # fmt: skip
    cm = next(d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard"))
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_folder"] == "Inference"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"


def test_keda_scaled_object(render_epp: Render) -> None:
    docs = render_epp(
        *autoscaling(
            "keda",
            "autoscaling.minReplicas=2",
            "autoscaling.maxReplicas=7",
            "autoscaling.queueSize.threshold=3",
            "autoscaling.kvCacheUtilization.threshold=0.75",
            "autoscaling.keda.serverAddress=http://prom.monitoring:9090",
        )
    )
    assert not of_kind(docs, "HorizontalPodAutoscaler")
    (so,) = of_kind(docs, "ScaledObject")
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert so["metadata"]["namespace"] == NS
    spec = so["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": TARGET}
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 7)
    triggers = {t["name"]: t for t in spec["triggers"]}
    assert set(triggers) == {"queue-size", "kv-cache-utilization"}
    assert all(t["type"] == "prometheus" and t["metricType"] == "Value" for t in triggers.values())
    queue, kv = triggers["queue-size"]["metadata"], triggers["kv-cache-utilization"]["metadata"]
    assert queue["query"] == 'max(inference_pool_average_queue_size{name="llama"})'
    assert kv["query"] == 'max(inference_pool_average_kv_cache_utilization{name="llama"})'
    assert (queue["threshold"], kv["threshold"]) == ("3", "0.75")
    assert queue["serverAddress"] == kv["serverAddress"] == "http://prom.monitoring:9090"
    names = exported()
    for t in triggers.values():
        assert metric_names(t["metadata"]["query"]) <= names


def test_hpa_on_external_metrics(render_epp: Render) -> None:
    docs = render_epp(
        *autoscaling(
            "hpa",
            "autoscaling.maxReplicas=4",
            "autoscaling.queueSize.threshold=10",
            "autoscaling.kvCacheUtilization.threshold=0.9",
            "autoscaling.hpa.behavior.scaleDown.stabilizationWindowSeconds=600",
        )
    )
    assert not of_kind(docs, "ScaledObject")
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": TARGET}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 4)
    assert spec["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 600}}
    metrics = {m["external"]["metric"]["name"]: m for m in spec["metrics"]}
    assert set(metrics) == {
        "inference_pool_average_queue_size",
        "inference_pool_average_kv_cache_utilization",
    }
    assert set(metrics) <= exported()
    for m in metrics.values():
        assert m["type"] == "External"
        assert m["external"]["metric"]["selector"] == {"matchLabels": {"name": POOL}}
    assert metrics["inference_pool_average_queue_size"]["external"]["target"] == {
        "type": "Value",
        "value": "10",
    }
    assert metrics["inference_pool_average_kv_cache_utilization"]["external"]["target"] == {
        "type": "Value",
        "value": "0.9",
    }


FLOW_QUEUE = "inference_extension_flow_control_queue_size"
FLOW_ON = (
    "autoscaling.flowControlQueueSize.enabled=true",
    "autoscaling.flowControlQueueSize.threshold=4",
)


def test_keda_scales_on_the_flow_control_queue_when_asked(render_epp: Render) -> None:
    (so,) = of_kind(render_epp(*autoscaling("keda", *FLOW_ON)), "ScaledObject")
    triggers = {t["name"]: t for t in so["spec"]["triggers"]}
    assert set(triggers) == {"queue-size", "kv-cache-utilization", "flow-control-queue-size"}
    queue = triggers["flow-control-queue-size"]
    assert (queue["metricType"], queue["metadata"]["threshold"]) == ("AverageValue", "4")
    query = queue["metadata"]["query"]
    assert f'{FLOW_QUEUE}{{inference_pool="llama"}}' in query
    assert query.startswith("sum(max by (")  # one leader queues: max over replicas, then sum
    assert metric_names(query) <= exported()


def test_hpa_scales_on_the_flow_control_queue_when_asked(render_epp: Render) -> None:
    (hpa,) = of_kind(render_epp(*autoscaling("hpa", *FLOW_ON)), "HorizontalPodAutoscaler")
    metrics = {m["external"]["metric"]["name"]: m["external"] for m in hpa["spec"]["metrics"]}
    assert metrics[FLOW_QUEUE]["metric"]["selector"] == {"matchLabels": {"inference_pool": POOL}}
    assert metrics[FLOW_QUEUE]["target"] == {"type": "AverageValue", "averageValue": "4"}


def test_adapter_rules_expose_the_hpa_metrics() -> None:
    rules = yaml.safe_load(ADAPTER_RULES.read_text())["rules"]["external"]
    rule, flow_rule = rules
    assert flow_rule["seriesQuery"].startswith(f"{FLOW_QUEUE}{{")
    assert FLOW_QUEUE in exported()
    assert "by (inference_pool)" in flow_rule["metricsQuery"]
    series = re.search(r'__name__=~"\^?([^"$]+)\$?"', rule["seriesQuery"])
    assert series is not None
    pattern = re.compile(series.group(1))
    names = exported()
    served = {n for n in names if pattern.fullmatch(n)}
    assert served == {
        "inference_pool_average_queue_size",
        "inference_pool_average_kv_cache_utilization",
    }
    assert "<<.LabelMatchers>>" in rule["metricsQuery"]
    assert rule["resources"]["overrides"]["namespace"] == {"resource": "namespace"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--set", "autoscaling.enabled=true"), "autoscaling.target.name is required"),
        (autoscaling("vpa"), 'autoscaling.kind "vpa"'),
        (
            autoscaling("keda", "autoscaling.minReplicas=5", "autoscaling.maxReplicas=2"),
            "must not exceed",
        ),
    ],
)
def test_refused(args: tuple[str, ...], message: str, helm: Helm) -> None:
    proc = helm("template", POOL, str(CHART), *BASE, *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


@pytest.mark.parametrize(
    "args",
    [DASH_ON, autoscaling("keda"), autoscaling("hpa"), (*DASH_ON, *autoscaling("hpa"))],
    ids=["dashboard", "keda", "hpa", "dashboard+hpa"],
)
def test_lints_strict(args: tuple[str, ...], helm: Helm) -> None:
    helm("lint", "--strict", str(CHART), *BASE, *args)
