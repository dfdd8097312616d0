"""The Helm chart `charts/bbr`: the body-based router, its Service and RBAC.

The rendered container args are fed to igw-bbr's own argument parser, so chart and CLI cannot
drift apart.

Rendered offline with `helm template`; the helpers (`helm`, `render`, `one`, ...) are fixtures
of `conftest.py`. helm comes from `make .tools/bin/helm` (a dependency of `make unit`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from igw.bbr.adapters import BBR_MANAGED_LABEL, AdapterSet, parse_configmap_data
from igw.bbr.cli import parse_args as parse_bbr_args

CHARTS = Path(__file__).resolve().parents[1]

Obj = dict[str, Any]
Helm = Callable[..., subprocess.CompletedProcess[str]]
Render = Callable[..., list[Obj]]
One = Callable[..., Obj]
Container = Callable[[list[Obj], str], Obj]
BoundToSa = Callable[..., None]

NS = "serving"
READ = ["get", "list", "watch"]


def kinds(docs: list[Obj]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def ports(c: Obj) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in c["ports"]}


# --- lint -------------------------------------------------------------------------------------


def test_helm_lint_bbr(helm: Helm) -> None:
    helm("lint", "--strict", str(CHARTS / "bbr"))
    helm("lint", "--strict", str(CHARTS / "bbr"), "--set", "bbr.multiNamespace=true")


# --- bbr --------------------------------------------------------------------------------------


def test_bbr_renders(render: Render, one: One) -> None:
    docs = render("bbr", release="igw")
    assert kinds(docs) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    svc = one(docs, "Service", "body-based-router")
    assert svc["spec"]["selector"] == {"app": "body-based-router"}
    assert one(docs, "Deployment")["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {
        "grpc-ext-proc": (9004, "grpc"),
        "http-metrics": (9090, "metrics"),
    }


def test_bbr_deployment(render: Render, one: One, container: Container) -> None:
    docs = render("bbr", release="igw")
    deploy = one(docs, "Deployment", "body-based-router")
    assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == "body-based-router-igw"
    c = container(docs, "bbr")
    assert ports(c) == {"grpc": 9004, "grpc-health": 9005, "metrics": 9090}
    assert c["livenessProbe"]["grpc"] == {"port": 9005}
    assert c["readinessProbe"]["grpc"] == {"port": 9005}
    assert "--zap-encoder=json" in c["args"]
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"]}
    assert env == {"NAMESPACE": "metadata.namespace"}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert deploy["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True

    options, _ = parse_bbr_args(c["args"])
    assert (options.grpc_port, options.grpc_health_port, options.metrics_port) == (9004, 9005, 9090)
    assert options.streaming is True
    assert options.metrics_endpoint_auth is True
    assert options.serve_models_endpoint is True
    assert [(p.type, p.name, p.params) for p in options.plugins] == [
        (
            "body-field-to-header",
            "model-extractor",
            {"fieldName": "model", "headerName": "X-Gateway-Model-Name"},
        ),
        ("base-model-to-header", "base-model-mapper", {}),
    ]


@pytest.mark.parametrize(
    ("sets", "secure"),
    [
        pytest.param((), True, id="default-tls"),
        pytest.param(("provider.name=istio",), True, id="istio-tls"),
        pytest.param(("provider.name=envoy-gateway",), False, id="envoy-gateway-plaintext"),
        pytest.param(
            ("provider.name=envoy-gateway", "bbr.secureServing=true"), True, id="explicit-tls"
        ),
        pytest.param(("bbr.secureServing=false",), False, id="explicit-plaintext"),
    ],
)
def test_bbr_tls_follows_what_the_gateway_speaks(
    sets: tuple[str, ...], secure: bool, render: Render, container: Container
) -> None:
    c = container(render("bbr", *(a for s in sets for a in ("--set", s))), "bbr")
    options, _ = parse_bbr_args(c["args"])
    assert options.secure_serving is secure


def test_bbr_models_endpoint_can_be_turned_off(render: Render, container: Container) -> None:
    c = container(render("bbr", "--set", "bbr.modelsEndpoint=false"), "bbr")
    options, _ = parse_bbr_args(c["args"])
    assert options.serve_models_endpoint is False


def test_bbr_ports_follow_values(render: Render, one: One, container: Container) -> None:
    docs = render("bbr", "--set", "bbr.port=9100,bbr.healthCheckPort=9101,bbr.streaming=false")
    c = container(docs, "bbr")
    assert ports(c) == {"grpc": 9100, "grpc-health": 9101, "metrics": 9090}
    assert c["readinessProbe"]["grpc"]["port"] == 9101
    options, _ = parse_bbr_args(c["args"])
    assert (options.grpc_port, options.grpc_health_port) == (9100, 9101)
    assert options.streaming is False
    assert one(docs, "Service")["spec"]["ports"][0]["port"] == 9100


def test_bbr_rbac_is_least_privilege(
    render: Render, one: One, bound_to_sa: BoundToSa, metrics_auth_rules: list[Obj]
) -> None:
    docs = render("bbr", release="igw")
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == NS
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": READ}]
    bound_to_sa(one(docs, "RoleBinding"), role, sa)
    cluster_role = one(docs, "ClusterRole")
    assert cluster_role["rules"] == metrics_auth_rules
    bound_to_sa(one(docs, "ClusterRoleBinding"), cluster_role, sa)


def test_bbr_multi_namespace_reads_configmaps_cluster_wide(
    render: Render, one: One, container: Container, bound_to_sa: BoundToSa
) -> None:
    docs = render(
        "bbr",
        "--set",
        "bbr.multiNamespace=true,bbr.monitoring.prometheus.auth.enabled=false",
        release="igw",
    )
    assert "Role" not in kinds(docs)
    cluster_role = one(docs, "ClusterRole")
    assert cluster_role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": READ}
    ]
    bound_to_sa(one(docs, "ClusterRoleBinding"), cluster_role, "body-based-router-igw")
    c = container(docs, "bbr")
    assert "env" not in c or all(e["name"] != "NAMESPACE" for e in c["env"] or [])
    options, _ = parse_bbr_args(c["args"])
    assert options.metrics_endpoint_auth is False


def test_bbr_refuses_clashing_ports(helm: Helm) -> None:
    proc = helm("template", "igw", str(CHARTS / "bbr"), "--set", "bbr.port=9005", check=False)
    assert proc.returncode != 0
    assert "must be distinct" in proc.stderr


BASE_MODELS = """
baseModels:
  - baseModel: meta-llama/Llama-3.1-8B-Instruct
    adapters: [food-review-1, ski-resorts]
    name: llama-adapters
  - baseModel: qwen
"""


def test_bbr_renders_the_adapter_configmaps_it_reads(render: Render, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(BASE_MODELS, encoding="utf-8")
    maps = [d for d in render("bbr", "-f", str(values)) if d["kind"] == "ConfigMap"]
    assert [m["metadata"]["name"] for m in maps] == [
        "llama-adapters",
        "body-based-router-adapters-1",
    ]
    assert all(m["metadata"]["labels"][BBR_MANAGED_LABEL] == "true" for m in maps)
    assert all(m["metadata"]["namespace"] == "serving" for m in maps)
    assert [parse_configmap_data(m["data"]) for m in maps] == [
        AdapterSet("meta-llama/Llama-3.1-8B-Instruct", frozenset({"food-review-1", "ski-resorts"})),
        AdapterSet("qwen"),
    ]


def test_bbr_renders_no_configmap_by_default(render: Render) -> None:
    assert [d for d in render("bbr") if d["kind"] == "ConfigMap"] == []


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        pytest.param(
            ["baseModels[0].adapters[0]=a"], "baseModels[0].baseModel is required", id="no-base"
        ),
        pytest.param(
            ["baseModels[0].baseModel=b", "baseModels[0].adapters=a"],
            "baseModels[0].adapters must be a list",
            id="adapters-not-a-list",
        ),
    ],
)
def test_bbr_refuses_bad_base_models(sets: list[str], message: str, helm: Helm) -> None:
    args = [a for s in sets for a in ("--set", s)]
    proc = helm("template", "bbr", str(CHARTS / "bbr"), *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
