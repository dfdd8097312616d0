"""The Helm charts `charts/epp` and `charts/bbr`, rendered offline with `helm template`.

No cluster: each test renders a chart and asserts on the objects, and the rendered container
args are fed to the services' own argument parsers, so chart and CLI cannot drift apart. helm
comes from `make .tools/bin/helm` (a dependency of `make unit`).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from igw.bbr.cli import parse_args as parse_bbr_args
from igw.epp.cli import parse_args as parse_epp_args
from igw.epp.config.loader import load_config

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
HELM = ROOT / ".tools" / "bin" / "helm"

Obj = dict[str, Any]

POOL = "llama"
NS = "serving"
MATCH = ("--set", "inferencePool.modelServers.matchLabels.app=vllm-llama")
HA = ("--set", "inferenceExtension.replicas=2")

READ = ["get", "list", "watch"]
METRICS_AUTH_RULES = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["subjectaccessreviews"],
        "verbs": ["create"],
    },
]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if not HELM.is_file():
        pytest.fail(f"{HELM} is missing: install it with `make .tools/bin/helm` (`make unit` does)")
    proc = subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, timeout=60, check=False
    )
    if check and proc.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def render(chart: str, *args: str, release: str = POOL, namespace: str = NS) -> list[Obj]:
    out = helm("template", release, str(CHARTS / chart), "--namespace", namespace, *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def kinds(docs: list[Obj]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def one(docs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {kind} named {name}: {[d['kind'] for d in docs]}"
    return found[0]


def container(docs: list[Obj], name: str) -> Obj:
    containers: list[Obj] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == [name]
    return containers[0]


def ports(c: Obj) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in c["ports"]}


def bound_to_sa(binding: Obj, role: Obj, sa: str, namespace: str = NS) -> None:
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": role["kind"],
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}]


# --- lint -------------------------------------------------------------------------------------


def test_helm_lint_epp() -> None:
    helm("lint", "--strict", str(CHARTS / "epp"), *MATCH)
    helm("lint", "--strict", str(CHARTS / "epp"), *MATCH, *HA)


def test_helm_lint_bbr() -> None:
    helm("lint", "--strict", str(CHARTS / "bbr"))
    helm("lint", "--strict", str(CHARTS / "bbr"), "--set", "bbr.multiNamespace=true")


# --- epp: default values (one replica) --------------------------------------------------------


def test_epp_renders_the_pool_and_everything_its_picker_needs() -> None:
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


def test_epp_inference_pool() -> None:
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


def test_epp_pool_values() -> None:
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


def test_epp_service_points_at_the_ext_proc_port() -> None:
    docs = render("epp", *MATCH)
    svc = one(docs, "Service", f"{POOL}-epp")
    assert svc["spec"]["selector"] == {"inferencepool": f"{POOL}-epp"}
    assert one(docs, "Deployment")["spec"]["selector"]["matchLabels"] == svc["spec"]["selector"]
    assert {p["name"]: (p["port"], p["targetPort"]) for p in svc["spec"]["ports"]} == {
        "grpc-ext-proc": (9002, "grpc"),
        "http-metrics": (9090, "metrics"),
    }


def test_epp_deployment_single_replica() -> None:
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


def test_epp_args_are_what_igw_epp_parses() -> None:
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


def test_epp_runs_as_non_root() -> None:
    docs = render("epp", *MATCH)
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    sc = container(docs, "epp")["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}


def test_epp_default_config_is_upstreams_and_loads() -> None:
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


def test_epp_config_for_another_engine_loads() -> None:
    docs = render("epp", *MATCH, "--set", "inferencePool.modelServerType=sglang")
    text = one(docs, "ConfigMap")["data"]["default-plugins.yaml"]
    extractor = next(p for p in yaml.safe_load(text)["plugins"] if p["type"].startswith("core"))
    assert extractor["parameters"] == {"defaultEngine": "sglang"}
    load_config(text)


def test_epp_custom_config_file() -> None:
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


def test_epp_flags_render_as_single_args() -> None:
    args = container(render("epp", *MATCH, "--set", "inferenceExtension.flags.v=4"), "epp")["args"]
    assert "--v=4" in args
    parse_epp_args(args)


def test_epp_rbac_is_least_privilege() -> None:
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
    assert cluster_role["rules"] == METRICS_AUTH_RULES
    bound_to_sa(one(docs, "ClusterRoleBinding"), cluster_role, sa)
    assert NS in cluster_role["metadata"]["name"]


def test_epp_without_metrics_auth_has_no_cluster_role() -> None:
    docs = render(
        "epp", *MATCH, "--set", "inferenceExtension.monitoring.prometheus.auth.enabled=false"
    )
    assert "ClusterRole" not in kinds(docs)
    assert "ClusterRoleBinding" not in kinds(docs)
    options, _ = parse_epp_args(container(docs, "epp")["args"])
    assert options.metrics_endpoint_auth is False


# --- epp: HA (two replicas, leader election) --------------------------------------------------


def test_epp_ha_adds_leader_election() -> None:
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


def test_epp_ha_rbac_adds_only_leases() -> None:
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
def test_epp_refuses_bad_values(args: tuple[str, ...], message: str) -> None:
    proc = helm("template", POOL, str(CHARTS / "epp"), *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


# --- bbr --------------------------------------------------------------------------------------


def test_bbr_renders() -> None:
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


def test_bbr_deployment() -> None:
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
    assert [(p.type, p.name, p.params) for p in options.plugins] == [
        (
            "body-field-to-header",
            "model-extractor",
            {"fieldName": "model", "headerName": "X-Gateway-Model-Name"},
        ),
        ("base-model-to-header", "base-model-mapper", {}),
    ]


def test_bbr_ports_follow_values() -> None:
    docs = render("bbr", "--set", "bbr.port=9100,bbr.healthCheckPort=9101,bbr.streaming=false")
    c = container(docs, "bbr")
    assert ports(c) == {"grpc": 9100, "grpc-health": 9101, "metrics": 9090}
    assert c["readinessProbe"]["grpc"]["port"] == 9101
    options, _ = parse_bbr_args(c["args"])
    assert (options.grpc_port, options.grpc_health_port) == (9100, 9101)
    assert options.streaming is False
    assert one(docs, "Service")["spec"]["ports"][0]["port"] == 9100


def test_bbr_rbac_is_least_privilege() -> None:
    docs = render("bbr", release="igw")
    sa = one(docs, "ServiceAccount")["metadata"]["name"]
    role = one(docs, "Role")
    assert role["metadata"]["namespace"] == NS
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": READ}]
    bound_to_sa(one(docs, "RoleBinding"), role, sa)
    cluster_role = one(docs, "ClusterRole")
    assert cluster_role["rules"] == METRICS_AUTH_RULES
    bound_to_sa(one(docs, "ClusterRoleBinding"), cluster_role, sa)


def test_bbr_multi_namespace_reads_configmaps_cluster_wide() -> None:
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


def test_bbr_refuses_clashing_ports() -> None:
    proc = helm("template", "igw", str(CHARTS / "bbr"), "--set", "bbr.port=9005", check=False)
    assert proc.returncode != 0
    assert "must be distinct" in proc.stderr
