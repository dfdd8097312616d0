"""`charts/epp`'s optional objects: InferenceObjectives, the HTTPRoute and the ServiceMonitor.

Each is off by default (`test_chart_epp.py` checks the default kinds) and follows upstream's
`inferencepool` chart values: `inferenceObjectives`, `experimentalHttpRoute`,
`inferenceExtension.monitoring`. Rendered offline by the `render` fixture (`conftest.py`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

Obj = dict[str, Any]
Helm = Callable[..., subprocess.CompletedProcess[str]]
Render = Callable[..., list[Obj]]
One = Callable[..., Obj]
BoundToSa = Callable[..., None]

CHART = str(Path(__file__).resolve().parents[1] / "epp")
POOL = "llama"
NS = "serving"
MATCH = ("--set", "inferencePool.modelServers.matchLabels.app=vllm-llama")
ROUTE = (*MATCH, "--set", "experimentalHttpRoute.enabled=true")
MONITOR = (*MATCH, "--set", "inferenceExtension.monitoring.prometheus.enabled=true")
NO_AUTH = ("--set", "inferenceExtension.monitoring.prometheus.auth.enabled=false")
OBJECTIVES = """
inferenceObjectives:
  - {name: critical, priority: 10}
  - {name: batch, priority: -1}
  - {name: unranked}
"""


def of_kind(docs: list[Obj], kind: str) -> list[Obj]:
    return [d for d in docs if d["kind"] == kind]


# --- InferenceObjectives ----------------------------------------------------------------------


def test_objectives_point_at_the_release_pool(render: Render, tmp_path: Any) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(OBJECTIVES, encoding="utf-8")
    objectives = of_kind(render("epp", *MATCH, "-f", str(values)), "InferenceObjective")
    assert [(o["metadata"]["name"], o["spec"].get("priority")) for o in objectives] == [
        ("critical", 10),
        ("batch", -1),
        ("unranked", None),
    ]
    for o in objectives:
        assert o["apiVersion"] == "inference.networking.x-k8s.io/v1alpha2"
        assert o["metadata"]["namespace"] == NS
        assert o["spec"]["poolRef"] == {
            "group": "inference.networking.k8s.io",
            "kind": "InferencePool",
            "name": POOL,
        }


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        pytest.param(["inferenceObjectives[0].priority=1"], "[0].name is required", id="no-name"),
        pytest.param(
            ["inferenceObjectives[0].name=a", "inferenceObjectives[0].priority=1.5"],
            "priority must be an integer, got 1.5",
            id="fraction",
        ),
    ],
)
def test_objectives_refuse_bad_entries(sets: list[str], message: str, helm: Helm) -> None:
    args = [a for s in sets for a in ("--set", s)]
    proc = helm("template", POOL, CHART, *MATCH, *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_a_priority_given_as_text_is_refused(helm: Helm) -> None:
    proc = helm(
        "template", POOL, CHART, *MATCH,
        "--set", "inferenceObjectives[0].name=a",
        "--set-string", "inferenceObjectives[0].priority=high",
        check=False,
    )  # fmt: skip
    assert "priority must be an integer, got high" in proc.stderr


# --- HTTPRoute --------------------------------------------------------------------------------


def test_route_sends_everything_on_the_gateway_to_the_pool(render: Render, one: One) -> None:
    route = one(render("epp", *ROUTE), "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"] == {**route["metadata"], "name": POOL, "namespace": NS}
    assert route["spec"]["parentRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference-gateway"}
    ]
    assert route["spec"]["rules"] == [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": [
                {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": POOL}
            ],
            "timeouts": {"request": "300s"},
        }
    ]


def test_route_for_one_base_model_matches_the_bbr_header(render: Render, one: One) -> None:
    args: tuple[str, ...] = (
        "--set",
        "experimentalHttpRoute.baseModel=meta-llama/Llama-3.1-8B-Instruct",
    )
    args += ("--set", "experimentalHttpRoute.inferenceGatewayName=edge")
    route = one(render("epp", *ROUTE, *args), "HTTPRoute")
    assert route["spec"]["parentRefs"][0]["name"] == "edge"
    (match,) = route["spec"]["rules"][0]["matches"]
    assert match["headers"] == [
        {
            "type": "Exact",
            "name": "X-Gateway-Base-Model-Name",
            "value": "meta-llama/Llama-3.1-8B-Instruct",
        }
    ]


def test_route_without_a_gateway_name_uses_the_release_s(render: Render, one: One) -> None:
    route = one(
        render("epp", *ROUTE, "--set", "experimentalHttpRoute.inferenceGatewayName="), "HTTPRoute"
    )
    assert route["spec"]["parentRefs"][0]["name"] == f"{POOL}-inference-gateway"


def test_route_on_gke_leaves_timeouts_to_gke(render: Render, one: One) -> None:
    route = one(render("epp", *ROUTE, "--set", "provider.name=gke"), "HTTPRoute")
    assert "timeouts" not in route["spec"]["rules"][0]


# --- ServiceMonitor ---------------------------------------------------------------------------


def test_monitor_selects_the_epp_service_s_metrics_port(render: Render, one: One) -> None:
    docs = render("epp", *MONITOR)
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert "helm.sh/chart" not in selector  # changes on upgrade: not a selector
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NS]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert endpoint["interval"] == "10s"


def test_monitor_scrapes_every_worker_once(render: Render, one: One) -> None:
    docs = render("epp", *MONITOR, "--set", "inferenceExtension.workers=2")
    endpoints = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert [e["port"] for e in endpoints] == ["http-metrics", "http-metrics-w1"]
    assert {e["port"] for e in endpoints} <= {
        p["name"] for p in one(docs, "Service")["spec"]["ports"]
    }


def test_monitor_with_auth_presents_a_reader_that_may_only_get_metrics(
    render: Render, one: One, bound_to_sa: BoundToSa
) -> None:
    docs = render("epp", *MONITOR)
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    secret = one(docs, "Secret")
    assert endpoint["authorization"] == {
        "type": "Bearer",
        "credentials": {"name": secret["metadata"]["name"], "key": "token"},
    }
    reader = f"{POOL}-epp-metrics-reader"
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["annotations"] == {"kubernetes.io/service-account.name": reader}
    assert one(docs, "ServiceAccount", reader)
    role = one(docs, "ClusterRole", f"{POOL}-{NS}-epp-metrics-reader")
    assert role["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    binding = one(docs, "ClusterRoleBinding", f"{POOL}-{NS}-epp-metrics-reader")
    bound_to_sa(binding, role, reader)


def test_monitor_without_auth_has_no_credentials(render: Render, one: One) -> None:
    docs = render("epp", *MONITOR, *NO_AUTH)
    (endpoint,) = one(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert "authorization" not in endpoint
    assert of_kind(docs, "Secret") == []
    assert [d["metadata"]["name"] for d in of_kind(docs, "ServiceAccount")] == [f"{POOL}-epp"]


def test_monitor_extra_labels_and_interval(render: Render, one: One) -> None:
    args: tuple[str, ...] = (
        "--set",
        "inferenceExtension.monitoring.prometheus.extraLabels.release=kps",
    )
    args += ("--set", "inferenceExtension.monitoring.interval=30s")
    monitor = one(render("epp", *MONITOR, *args), "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["endpoints"][0]["interval"] == "30s"


def test_no_monitor_on_gke(render: Render) -> None:
    docs = render("epp", *MONITOR, "--set", "provider.name=gke")
    assert of_kind(docs, "ServiceMonitor") == of_kind(docs, "Secret") == []
