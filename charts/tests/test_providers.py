"""Gateway provider variants (`provider.name`) of `charts/epp` and `charts/bbr`, via `helm`."""

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

CHARTS = Path(__file__).resolve().parents[1]
MATCH = ["--set", "inferencePool.modelServers.matchLabels.app=vllm-llama"]
Obj = dict[str, Any]
Helm = Callable[..., subprocess.CompletedProcess[str]]
Render = Callable[..., list[Obj]]
One = Callable[..., Obj]
Added = Callable[..., list[Obj]]


@pytest.fixture
def added(render: Render) -> Added:
    """`added(chart, provider, *args)`: what `provider.name=<provider>` adds to a render."""

    def added(chart: str, provider: str, *args: str) -> list[Obj]:
        base = {(d["kind"], d["metadata"]["name"]) for d in render(chart, *args)}
        docs = render(chart, *args, "--set", f"provider.name={provider}")
        return [d for d in docs if (d["kind"], d["metadata"]["name"]) not in base]

    return added


@pytest.fixture
def epp_base(render: Render) -> list[str]:
    """The kinds `charts/epp` renders with provider none."""
    return [d["kind"] for d in render("epp", *MATCH)]


LEAN = {"response_header_mode": "SEND", "response_body_mode": "STREAMED"}
LEAN |= {"response_trailer_mode": "SKIP"}
COMPATIBLE = {"response_header_mode": "SEND", "response_body_mode": "FULL_DUPLEX_STREAMED"}
COMPATIBLE |= {"response_trailer_mode": "SEND"}
REQUEST = {"request_header_mode": "SEND", "request_body_mode": "FULL_DUPLEX_STREAMED"}
REQUEST |= {"request_trailer_mode": "SEND"}


@pytest.mark.parametrize("provider", ["none", "istio", "gke", "envoy-gateway", "kgateway"])
def test_bbr_lints(provider: str, helm: Helm) -> None:
    proc = helm("lint", "--strict", str(CHARTS / "bbr"), "--set", f"provider.name={provider}")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("provider", ["none", "istio", "gke", "envoy-gateway", "kgateway"])
def test_epp_lints(provider: str, helm: Helm) -> None:
    args = [*MATCH, "--set", f"provider.name={provider}"]
    proc = helm("lint", "--strict", str(CHARTS / "epp"), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("mode", "response"), [("lean", LEAN), ("compatible", COMPATIBLE), (None, LEAN)]
)
@pytest.mark.parametrize(("failure", "allow"), [("FailClose", False), ("FailOpen", True)])
def test_bbr_istio(
    mode: str | None, response: dict[str, str], failure: str, allow: bool, *, one: One, added: Added
) -> None:
    args = ["--set", f"bbr.failureMode={failure}"]
    args += ["--set", f"bbr.responseMode={mode}"] if mode else []
    docs = added("bbr", "istio", *args)
    assert sorted(d["kind"] for d in docs) == ["DestinationRule", "EnvoyFilter"]
    ef = one(docs, "EnvoyFilter")
    assert ef["apiVersion"] == "networking.istio.io/v1alpha3"
    assert ef["spec"]["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference-gateway"}
    ]
    patch = ef["spec"]["configPatches"][0]
    assert patch["applyTo"] == "HTTP_FILTER"
    assert patch["patch"]["operation"] == "INSERT_FIRST"
    cfg = patch["patch"]["value"]["typed_config"]
    assert cfg["processing_mode"] == REQUEST | response
    assert cfg["failure_mode_allow"] is allow
    assert cfg["message_timeout"] == "5s"
    assert cfg["route_cache_action"] == "CLEAR"
    cluster = cfg["grpc_service"]["envoy_grpc"]["cluster_name"]
    assert cluster == "outbound|9004||body-based-router.serving.svc.cluster.local"
    dr = one(docs, "DestinationRule")["spec"]
    assert dr["host"] == "body-based-router.serving.svc.cluster.local"
    assert dr["trafficPolicy"]["tls"] == {"mode": "SIMPLE", "insecureSkipVerify": True}


@pytest.mark.parametrize(("failure", "fail_open"), [("FailClose", False), ("FailOpen", True)])
def test_bbr_gke(failure: str, fail_open: bool, one: One, added: Added) -> None:
    docs = added("bbr", "gke", "--set", f"bbr.failureMode={failure}")
    assert sorted(d["kind"] for d in docs) == ["GCPRoutingExtension", "HealthCheckPolicy"]
    ext_spec = one(docs, "GCPRoutingExtension")["spec"]
    assert ext_spec["targetRefs"][0]["kind"] == "Gateway"
    assert ext_spec["targetRefs"][0]["name"] == "inference-gateway"
    ext = ext_spec["extensionChains"][0]["extensions"][0]
    assert ext["requestBodySendMode"] == "FullDuplexStreamed"
    assert ext["supportedEvents"] == ["RequestHeaders", "RequestBody", "RequestTrailers"]
    assert ext["failOpen"] is fail_open
    assert ext["timeout"] == "5s"
    assert ext["backendRef"] == {
        "group": "",
        "kind": "Service",
        "name": "body-based-router",
        "port": 9004,
    }
    hc = one(docs, "HealthCheckPolicy")["spec"]
    assert hc["default"]["config"]["grpcHealthCheck"]["port"] == 9005
    assert hc["targetRef"]["kind"] == "Service"
    assert hc["targetRef"]["name"] == "body-based-router"


@pytest.mark.parametrize(
    ("mode", "body"), [("lean", "Streamed"), ("compatible", "FullDuplexStreamed")]
)
@pytest.mark.parametrize(("failure", "fail_open"), [("FailClose", False), ("FailOpen", True)])
def test_bbr_envoy_gateway(
    mode: str, body: str, failure: str, fail_open: bool, *, one: One, added: Added
) -> None:
    args = ["--set", f"bbr.responseMode={mode}", "--set", f"bbr.failureMode={failure}"]
    args += ["--set", "provider.envoyGateway.gateway.name=edge"]
    docs = added("bbr", "envoy-gateway", *args)
    policy = one(docs, "EnvoyExtensionPolicy")
    assert len(docs) == 1
    assert policy["apiVersion"] == "gateway.envoyproxy.io/v1alpha1"
    spec = policy["spec"]
    assert spec["targetRefs"] == [
        {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "edge"}
    ]
    (proc,) = spec["extProc"]
    assert proc["backendRefs"] == [
        {"group": "", "kind": "Service", "name": "body-based-router", "port": 9004}
    ]
    assert proc["processingMode"] == {
        "request": {"body": "FullDuplexStreamed"},
        "response": {"body": body},
    }
    assert proc["failOpen"] is fail_open
    assert proc["messageTimeout"] == "5s"


def test_bbr_kgateway_adds_nothing(added: Added) -> None:
    assert added("bbr", "kgateway") == []


def test_epp_istio(render: Render, one: One, epp_base: list[str]) -> None:
    pool = [
        "--set",
        "provider.istio.destinationRule.trafficPolicy.connectionPool.tcp.maxConnections=7",
    ]
    docs = render("epp", *MATCH, "--set", "provider.name=istio", *pool)
    assert sorted(d["kind"] for d in docs) == sorted([*epp_base, "DestinationRule"])
    dr = one(docs, "DestinationRule")
    assert dr["metadata"]["name"] == "llama-epp"
    assert dr["spec"]["host"] == "llama-epp.serving.svc.cluster.local"
    assert dr["spec"]["trafficPolicy"] == {
        "tls": {"mode": "SIMPLE", "insecureSkipVerify": True},
        "connectionPool": {"tcp": {"maxConnections": 7}},
    }
    host = ["--set", "provider.istio.destinationRule.host=epp.example"]
    docs = render("epp", *MATCH, "--set", "provider.name=istio", *host)
    assert one(docs, "DestinationRule")["spec"]["host"] == "epp.example"
    assert "connectionPool" not in one(docs, "DestinationRule")["spec"]["trafficPolicy"]


_ISTIO_POOL = "provider.istio.destinationRule.trafficPolicy.connectionPool"


@pytest.mark.parametrize(
    ("values", "pool"),
    [
        pytest.param((), {"http": {"maxRequestsPerConnection": 200}}, id="default"),
        pytest.param(
            (f"{_ISTIO_POOL}.tcp.maxConnections=7",),
            {"tcp": {"maxConnections": 7}, "http": {"maxRequestsPerConnection": 200}},
            id="with-tcp",
        ),
        pytest.param(
            (f"{_ISTIO_POOL}.http.maxRequestsPerConnection=50",),
            {"http": {"maxRequestsPerConnection": 50}},
            id="user-wins",
        ),
    ],
)
def test_epp_istio_workers_replace_connections(
    values: tuple[str, ...], pool: dict[str, Any], *, render: Render, one: One
) -> None:
    """With workers, the gateway's connections to the EPP are replaced as they go, so the kernel
    places them on the workers again; what the values set wins."""
    args = ["--set", "provider.name=istio", "--set", "inferenceExtension.workers=2"]
    for value in values:
        args += ["--set", value]
    docs = render("epp", *MATCH, *args)
    assert one(docs, "DestinationRule")["spec"]["trafficPolicy"]["connectionPool"] == pool


@pytest.mark.parametrize("provider", ["envoy-gateway", "kgateway"])
@pytest.mark.parametrize(("failure", "mode"), [("FailOpen", "lean"), ("FailClose", "compatible")])
def test_epp_native_providers(
    provider: str, failure: str, mode: str, *, render: Render, one: One, epp_base: list[str]
) -> None:
    args = ["--set", f"inferenceExtension.failureMode={failure}"]
    args += ["--set", f"inferenceExtension.responseMode={mode}"]
    docs = render("epp", *MATCH, *args, "--set", f"provider.name={provider}")
    assert sorted(d["kind"] for d in docs) == sorted(epp_base)
    # The gateway wires the EPP from the pool: its port and failure mode.
    ref = one(docs, "InferencePool")["spec"]["endpointPickerRef"]
    assert ref == {"kind": "Service", "name": "llama-epp", "port": {"number": 9002}} | {
        "failureMode": failure
    }


@pytest.mark.parametrize(
    ("chart", "args", "message"),
    [
        ("bbr", ["--set", "provider.name=nginx"], 'provider.name "nginx": must be one of: none'),
        ("epp", [*MATCH, "--set", "provider.name=nginx"], 'provider.name "nginx": must be one of'),
        ("bbr", ["--set", "bbr.responseMode=full"], 'bbr.responseMode "full"'),
        ("bbr", ["--set", "bbr.failureMode=Open"], 'bbr.failureMode "Open"'),
        ("epp", [*MATCH, "--set", "inferenceExtension.responseMode=x"], "lean or compatible"),
        ("epp", [*MATCH, "--set", "inferenceExtension.failureMode=x"], "FailOpen or FailClose"),
    ],
)
def test_refused(chart: str, args: list[str], message: str, helm: Helm) -> None:
    proc = helm("template", "llama", str(CHARTS / chart), *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_epp_gke_checks_the_pool_s_servers_and_its_backend(
    render: Render, one: One, epp_base: list[str]
) -> None:
    """As upstream's gke.yaml: a HealthCheckPolicy and a GCPBackendPolicy on the InferencePool;
    GKE builds the EPP's extension from the pool itself."""
    docs = render("epp", *MATCH, "--set", "provider.name=gke")
    assert sorted(d["kind"] for d in docs) == sorted([*epp_base, "HealthCheckPolicy",
                                                      "GCPBackendPolicy"])  # fmt: skip
    check = one(docs, "HealthCheckPolicy")["spec"]
    assert check["targetRef"]["kind"] == "InferencePool"
    assert check["default"]["config"]["httpHealthCheck"]["requestPath"] == "/health"
    assert one(docs, "GCPBackendPolicy")["spec"]["targetRef"]["kind"] == "InferencePool"
