"""Every object the charts render, against the schema that will judge it on a cluster.

Core objects (Deployment, Service, RBAC, ConfigMap, HPA, ...) are validated strictly (unknown
fields are errors) against Kubernetes' own OpenAPI schemas, as shipped by `kubernetes-validate`,
for the oldest and the newest Kubernetes we render for. Instances of our CRDs (InferencePool,
InferenceObjective) go through our CRD's `openAPIV3Schema`. The gateway providers' and operators'
kinds (Envoy Gateway, Istio, GKE, prometheus-operator, KEDA, Gateway API) have no schema here:
they are listed by name, so a kind nobody listed fails instead of passing unchecked, and their
fields are asserted by the provider and observability tests.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

Obj = dict[str, Any]
Render = Callable[..., list[Obj]]

CRDS = Path(__file__).resolve().parents[1] / "crds"
KUBERNETES = ("1.29", kubernetes_validate.latest_version())
"""Oldest supported (upstream GIE's minimum) and newest schema set."""

THIRD_PARTY = {
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy"),
    ("networking.istio.io/v1alpha3", "EnvoyFilter"),
    ("networking.istio.io/v1", "DestinationRule"),
    ("networking.gke.io/v1", "HealthCheckPolicy"),
    ("networking.gke.io/v1", "GCPBackendPolicy"),
    ("networking.gke.io/v1", "GCPRoutingExtension"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("keda.sh/v1alpha1", "ScaledObject"),
}

MATCH = ("--set", "inferencePool.modelServers.matchLabels.app=vllm-llama")
EVERYTHING_ON = (
    *MATCH,
    *("--set", "inferenceExtension.replicas=2"),
    *("--set", "inferenceExtension.monitoring.prometheus.enabled=true"),
    *("--set", "experimentalHttpRoute.enabled=true"),
    *("--set", "experimentalHttpRoute.baseModel=meta-llama/Llama-3.1-8B-Instruct"),
    *("--set", "inferenceObjectives[0].name=critical"),
    *("--set", "inferenceObjectives[0].priority=10"),
    *("--set", "inferenceObjectives[1].name=batch"),
    *("--set", "inferenceObjectives[1].priority=-1"),
    *("--set", "inferenceObjectives[2].name=unranked"),
    *("--set", "grafana.dashboard.enabled=true"),
    *("--set", "autoscaling.enabled=true"),
    *("--set", "autoscaling.target.name=vllm-llama"),
    *("--set", "autoscaling.flowControlQueueSize.enabled=true"),
)
PROVIDERS = ("none", "istio", "gke", "envoy-gateway", "kgateway")

RENDERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "epp-defaults": ("epp", MATCH),
    **{f"epp-all-{p}": ("epp", (*EVERYTHING_ON, "--set", f"provider.name={p}")) for p in PROVIDERS},
    "epp-hpa": ("epp", (*EVERYTHING_ON, "--set", "autoscaling.kind=hpa")),
    "bbr-defaults": ("bbr", ()),
    **{
        f"bbr-{p}": ("bbr", ("--set", f"provider.name={p}", "--set", "bbr.replicas=2"))
        for p in PROVIDERS
    },
    "bbr-multi-namespace": ("bbr", ("--set", "bbr.multiNamespace=true")),
    "bbr-adapters": (
        "bbr",
        ("--set", "baseModels[0].baseModel=llama", "--set", "baseModels[0].adapters[0]=lora"),
    ),
}
"""Test id -> (chart, helm args): defaults, and every optional object on, per provider."""


def _our_crds() -> dict[tuple[str, str], Obj]:
    """(apiVersion, kind) -> that version's openAPIV3Schema, for every CRD under charts/crds."""
    schemas: dict[tuple[str, str], Obj] = {}
    for path in sorted(CRDS.glob("*.*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = version["schema"]["openAPIV3Schema"]
    return schemas


OUR_CRDS = _our_crds()


def schema_errors(doc: Obj) -> list[str]:
    """What a cluster would refuse in `doc` (empty when valid); raises for an unlisted kind."""
    key = (doc["apiVersion"], doc["kind"])
    if key in OUR_CRDS:
        validator = jsonschema.Draft7Validator(OUR_CRDS[key])
        return [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(doc)]
    if key in THIRD_PARTY:
        return []
    errors = []
    for version in KUBERNETES:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            errors.append(f"k8s {version}: {'.'.join(map(str, e.path))}: {e.message}")
    return errors


@pytest.mark.parametrize(("chart", "args"), RENDERS.values(), ids=RENDERS.keys())
def test_every_rendered_object_is_valid(chart: str, args: tuple[str, ...], render: Render) -> None:
    docs = render(chart, *args)
    assert docs
    failures = {
        f"{d['kind']}/{d['metadata']['name']}": errs for d in docs if (errs := schema_errors(d))
    }
    assert failures == {}


def test_the_cases_render_every_listed_kind(render: Render) -> None:
    """The lists above are not stale: each third-party kind and each CRD kind is rendered."""
    rendered = (render(chart, *args) for chart, args in RENDERS.values())
    seen = {(d["apiVersion"], d["kind"]) for docs in rendered for d in docs}
    assert THIRD_PARTY - seen == set()
    assert ("inference.networking.k8s.io/v1", "InferencePool") in seen
    assert ("inference.networking.x-k8s.io/v1alpha2", "InferenceObjective") in seen


def test_unlisted_kinds_are_not_waved_through() -> None:
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        schema_errors({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "s"},
                "spec": {"prots": []},
            },
            "prots",
            id="unknown-field",
        ),
        pytest.param(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "s"},
                "spec": {"ports": [{"port": "http"}]},
            },
            "spec.ports.0.port",
            id="wrong-type",
        ),
        pytest.param(
            {
                "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
                "kind": "InferenceObjective",
                "metadata": {"name": "o"},
                "spec": {"priority": 1},
            },
            "poolRef",
            id="crd-required-field",
        ),
    ],
)
def test_the_validation_can_fail(doc: Obj, expected: str) -> None:
    errors = schema_errors(doc)
    assert errors
    assert all(expected in e for e in errors), errors
