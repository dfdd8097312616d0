"""The Helm chart `charts/epp` (pool, picker, RBAC, HA, refusals), rendered offline by helm.

Container args go through igw-epp's own parser, so chart and CLI cannot drift apart. `helm`,
`render`, `one`, ... are fixtures of `conftest.py`; helm comes from `make .tools/bin/helm`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from igw.epp.cli import parse_args as parse_epp_args
from igw.epp.config.loader import load_config

CHARTS = Path(__file__).resolve().parents[1]

Obj = dict[str, Any]
Helm = Callable[..., subprocess.CompletedProcess[str]]
Render = Callable[..., list[Obj]]
One = Callable[..., Obj]
Container = Callable[[list[Obj], str], Obj]
BoundToSa = Callable[..., None]

POOL = "llama"
NS = "serving"
MATCH = ("--set", "inferencePool.modelServers.matchLabels.app=vllm-llama")
HA = ("--set", "inferenceExtension.replicas=2")
READ = ["get", "list", "watch"]


def kinds(docs: list[Obj]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def ports(c: Obj) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in c["ports"]}


def test_helm_lint_epp(helm: Helm) -> None:
    helm("lint", "--strict", str(CHARTS / "epp"), *MATCH)
    helm("lint", "--strict", str(CHARTS / "epp"), *MATCH, *HA)


# --- epp: default values (one replica) --------------------------------------------------------


def test_epp_renders_the_pool_and_everything_its_picker_needs(render: Render) -> None:
    docs = render("epp", *MATCH)
    assert kinds(docs) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Deployment",
        "InferencePool",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
    ]
    assert all(d["metadata"].get("namespace", NS) == NS for d in docs)


def test_epp_inference_pool(render: Render, one: One) -> None:
    pool = one(render("epp", *MATCH), "InferencePool")
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    assert pool["metadata"]["name"] == POOL
    assert pool["spec"] == {
        "selector": {"matchLabels": {"app": "vllm-llama"}},
        "targetPorts": [{"number": 8000}],
        "appProtocol": "http",
        "endpointPickerRef": {
            "kind": "Service",
            "name": f"{POOL}-epp",
            "port": {"number": 9002},
            "failureMode": "FailOpen",
        },
    }


def test_epp_pool_values(render: Render, one: One) -> None:
    docs = render(
        "epp",
        *MATCH,
        "--set",
        "inferencePool.targetPorts[0].number=8000,inferencePool.targetPorts[1].number=8001",
        "--set",
        "inferencePool.modelServerProtocol=grpc",
        "--set",
        "inferenceExtension.failureMode=FailClose",
    )
    spec = one(docs, "InferencePool")["spec"]
    assert spec["targetPorts"] == [{"number": 8000}, {"number": 8001}]
    assert spec["appProtocol"] == "kubernetes.io/h2c"
    assert spec["endpointPickerRef"]["failureMode"] == "FailClose"


def test_epp_service_points_at_the_ext_proc_port(render: Render, one: One) -> None:
    docs = render("epp", *MATCH)
    svc = one(docs, "Service", f"{POOL}-epp")
    assert svc["spec"]["selector"] == {"inferencepool": f"{POOL}-epp"}
    assert one(docs, "Deployment")["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {
        "grpc-ext-proc": (9002, "grpc"),
        "http-metrics": (9090, "metrics"),
    }


def test_epp_deployment_single_replica(render: Render, one: One, container: Container) -> None:
    docs = render("epp", *MATCH)
    deploy = one(docs, "Deployment", f"{POOL}-epp")
    pod = deploy["spec"]["template"]["spec"]
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["terminationGracePeriodSeconds"] == 130
    assert pod["serviceAccountName"] == f"{POOL}-epp"

    c = container(docs, "epp")
    assert ports(c) == {"grpc": 9002, "grpc-health": 9003, "metrics": 9090}
    assert c["livenessProbe"]["grpc"] == {"port": 9003, "service": "inference-extension"}
    assert c["readinessProbe"]["grpc"] == {"port": 9003, "service": "inference-extension"}
    assert "--ha-enable-leader-election" not in c["args"]
    assert {"--pool-name=llama", "--pool-namespace=serving", "--zap-encoder=json"} <= set(c["args"])
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"]}
    assert env == {"NAMESPACE": "metadata.namespace", "POD_NAME": "metadata.name"}

    # The config file the args name is the ConfigMap's key, mounted at /config.
    assert {"name": "plugins-config", "mountPath": "/config", "readOnly": True} in c["volumeMounts"]
    volume = next(v for v in pod["volumes"] if v["name"] == "plugins-config")
    assert volume["configMap"]["name"] == f"{POOL}-epp"
    assert "default-plugins.yaml" in one(docs, "ConfigMap", f"{POOL}-epp")["data"]


def test_epp_args_are_what_igw_epp_parses(render: Render, container: Container) -> None:
    c = container(render("epp", *MATCH), "epp")
    options, _ = parse_epp_args(c["args"])
    assert options.pool is not None
    assert (options.pool.name, options.pool.namespace) == (POOL, NS)
    assert options.pool.group == "inference.networking.k8s.io"
    assert (options.grpc_port, options.grpc_health_port, options.metrics_port) == (9002, 9003, 9090)
    assert options.config_file == Path("/config/default-plugins.yaml")
    assert options.leader_election is False
    assert options.metrics_endpoint_auth is True
    assert options.tracing is False


def test_epp_runs_as_non_root(render: Render, one: One, container: Container) -> None:
    docs = render("epp", *MATCH)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    sc = container(docs, "epp")["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}


def test_epp_default_config_is_upstreams_and_loads(render: Render, one: One) -> None:
    text = one(render("epp", *MATCH), "ConfigMap")["data"]["default-plugins.yaml"]
    doc = yaml.safe_load(text)
    assert doc["kind"] == "EndpointPickerConfig"
    assert [p["type"] for p in doc["plugins"]] == [
        "queue-scorer",
        "kv-cache-utilization-scorer",
        "prefix-cache-scorer",
        "metrics-data-source",
        "core-metrics-extractor",
    ]
    assert doc["schedulingProfiles"] == [
        {
            "name": "default",
            "plugins": [
                {"pluginRef": "queue-scorer", "weight": 2},
                {"pluginRef": "kv-cache-utilization-scorer", "weight": 2},
                {"pluginRef": "prefix-cache-scorer", "weight": 3},
            ],
        }
    ]
    config = load_config(text)
    assert {"queue-scorer", "prefix-cache-scorer", "core-metrics-extractor"} <= set(config.plugins)


def test_epp_config_for_another_engine_loads(render: Render, one: One) -> None:
    docs = render("epp", *MATCH, "--set", "inferencePool.modelServerType=sglang")
    text = one(docs, "ConfigMap")["data"]["default-plugins.yaml"]
    extractor = next(p for p in yaml.safe_load(text)["plugins"] if p["type"].startswith("core"))
    assert extractor["parameters"] == {"defaultEngine": "sglang"}
    load_config(text)


def test_epp_custom_config_file(render: Render, one: One, container: Container) -> None:
    custom = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
    docs = render(
        "epp",
        *MATCH,
        "--set-string",
        f"inferenceExtension.pluginsCustomConfig.custom\\.yaml={custom}",
        "--set",
        "inferenceExtension.pluginsConfigFile=custom.yaml",
    )
    assert one(docs, "ConfigMap")["data"]["custom.yaml"] == custom
    assert "--config-file=/config/custom.yaml" in container(docs, "epp")["args"]


def test_epp_flags_render_as_single_args(render: Render, container: Container) -> None:
    args = container(render("epp", *MATCH, "--set", "inferenceExtension.flags.v=4"), "epp")["args"]
    assert "--v=4" in args
    parse_epp_args(args)


def test_epp_rbac_is_least_privilege(
    render: Render, one: One, bound_to_sa: BoundToSa, metrics_auth_rules: list[Obj]
) -> None:
    docs = render("epp", *MATCH)
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    assert sa == f"{POOL}-epp"

    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == NS
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": READ},
        {
            "apiGroups": ["inference.networking.k8s.io"],
            "resources": ["inferencepools"],
            "verbs": READ,
        },
        {
            "apiGroups": ["inference.networking.x-k8s.io"],
            "resources": ["inferenceobjectives", "inferencemodelrewrites"],
            "verbs": READ,
        },
    ]
    bound_to_sa(one(docs, "RoleBinding"), role, sa)

    cluster_role = one(docs, "ClusterRole")
    assert cluster_role["rules"] == metrics_auth_rules
    bound_to_sa(one(docs, "ClusterRoleBinding"), cluster_role, sa)
    assert NS in cluster_role["metadata"]["name"]


def test_epp_without_metrics_auth_has_no_cluster_role(render: Render, container: Container) -> None:
    docs = render(
        "epp", *MATCH, "--set", "inferenceExtension.monitoring.prometheus.auth.enabled=false"
    )
    assert "ClusterRole" not in kinds(docs)
    assert "ClusterRoleBinding" not in kinds(docs)
    options, _ = parse_epp_args(container(docs, "epp")["args"])
    assert options.metrics_endpoint_auth is False


# --- epp: HA (two replicas, leader election) --------------------------------------------------


def test_epp_ha_adds_leader_election(render: Render, one: One, container: Container) -> None:
    docs = render("epp", *MATCH, *HA)
    deploy = one(docs, "Deployment")
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    assert deploy["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 130

    c = container(docs, "epp")
    assert c["args"].count("--ha-enable-leader-election") == 1
    options, _ = parse_epp_args(c["args"])
    assert options.leader_election is True
    assert c["livenessProbe"]["grpc"] == {"port": 9003, "service": "liveness"}
    assert c["readinessProbe"]["grpc"] == {"port": 9003, "service": "readiness"}


def test_epp_ha_rbac_adds_only_leases(render: Render, one: One, bound_to_sa: BoundToSa) -> None:
    docs = render("epp", *MATCH, *HA)
    assert kinds(docs).count("Role") == 2
    assert kinds(docs).count("RoleBinding") == 2
    sa = f"{POOL}-epp"
    lease_role = one(docs, "Role", f"{POOL}-epp-leader-election")
    assert lease_role["metadata"]["namespace"] == NS
    assert lease_role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        }
    ]
    bound_to_sa(one(docs, "RoleBinding", f"{POOL}-epp-leader-election"), lease_role, sa)
    # The read-only role is unchanged.
    assert one(docs, "Role", sa)["rules"] == one(render("epp", *MATCH), "Role")["rules"]


# --- epp: values the chart refuses ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "inferencePool.modelServers.matchLabels is required"),
        ((*MATCH, "--set", "provider.name=nginx"), 'provider.name "nginx"'),
        (
            (*MATCH, "--set", "inferencePool.apiVersion=inference.networking.x-k8s.io/v1alpha2"),
            "inference.networking.k8s.io/v1 pools only",
        ),
        ((*MATCH, "--set", "inferenceExtension.pluginsConfigFile=nope.yaml"), '"nope.yaml"'),
        ((*MATCH, "--set", "inferencePool.targetPorts=null"), "1 to 8 ports"),
    ],
)
def test_epp_refuses_bad_values(args: tuple[str, ...], message: str, helm: Helm) -> None:
    proc = helm("template", POOL, str(CHARTS / "epp"), *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_epp_workers_share_the_port_and_each_has_a_metrics_port(
    render: Render, one: One, container: Container
) -> None:
    docs = render("epp", *MATCH, "--set", "inferenceExtension.workers=3")
    c = container(docs, "epp")
    assert c["args"].count("--workers=3") == 1
    _, args = parse_epp_args(c["args"])
    assert args.workers == 3
    assert ports(c) == {
        "grpc": 9002, "grpc-health": 9003, "metrics": 9090, "metrics-w1": 9091, "metrics-w2": 9092,
    }  # fmt: skip
    service_ports = {p["name"]: p["targetPort"] for p in one(docs, "Service")["spec"]["ports"]}
    assert service_ports["http-metrics-w2"] == "metrics-w2"


def test_epp_one_worker_by_default_passes_no_workers_flag(
    render: Render, container: Container
) -> None:
    c = container(render("epp", *MATCH), "epp")
    assert not any(a.startswith("--workers") for a in c["args"])
    assert "metrics-w1" not in ports(c)
