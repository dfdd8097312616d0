"""The Kubernetes guide (docs/getting-started/kubernetes.md and its provider pages): its helm
commands render, and the files it applies are right.

No cluster runs here, so each `helm install` of the guide is replayed as `helm template` with
the same arguments, for every provider `$PROVIDER` may name, and the rendered objects are checked
against the guide's promises. The example Gateways must carry the name the charts attach to,
and the adapter ConfigMap must be one the BBR accepts.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from igw.bbr.adapters import BBR_MANAGED_LABEL, AdapterSet, parse_configmap_data

Obj = dict[str, Any]
Helm = Callable[..., subprocess.CompletedProcess[str]]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "kubernetes"
PROVIDERS = ("envoy-gateway", "istio", "gke", "kgateway")
GATEWAY_CLASSES = {
    "envoy-gateway": "envoy-gateway",
    "istio": "istio",
    "gke": "gke-l7-regional-external-managed",
    "kgateway": "agentgateway",
}
ENV = {"REGISTRY": "registry.example.com"}


GUIDE = ROOT / "docs" / "getting-started"


def deploy_section() -> str:
    """The guide's text: the Kubernetes page, then each provider's page."""
    pages = [GUIDE / "kubernetes.md", *sorted((GUIDE / "providers").glob("*.md"))]
    return "\n".join(page.read_text(encoding="utf-8") for page in pages)


def helm_installs() -> list[list[str]]:
    """Each `helm install` of the guide's bash blocks, as argv (continuations joined)."""
    blocks = re.findall(r"```bash[^\n]*\n(.*?)```", deploy_section(), re.S)
    commands = [c for b in blocks for c in b.replace("\\\n", " ").splitlines()]
    return [shlex.split(c) for c in commands if c.startswith("helm install ")]


def render_as_documented(helm: Helm, argv: list[str], provider: str) -> list[Obj]:
    env = {**ENV, "PROVIDER": provider}
    args = [re.sub(r"\$(\w+)", lambda m: env[m.group(1)], a) for a in argv[2:]]
    release, chart, *rest = args
    proc = helm("template", release, str(ROOT / chart), "--namespace", "serving", *rest)
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def test_the_section_installs_both_charts() -> None:
    assert [argv[3] for argv in helm_installs()] == ["charts/epp", "charts/bbr"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_epp_install_renders_what_the_section_says(provider: str, helm: Helm) -> None:
    (epp,) = [argv for argv in helm_installs() if argv[3] == "charts/epp"]
    docs = render_as_documented(helm, epp, provider)
    by_kind = {d["kind"]: d for d in docs}
    route = by_kind["HTTPRoute"]
    assert route["spec"]["parentRefs"][0]["name"] == "inference-gateway"
    header = route["spec"]["rules"][0]["matches"][0]["headers"][0]
    assert header["name"] == "X-Gateway-Base-Model-Name"
    assert by_kind["InferenceObjective"]["spec"]["priority"] == 10
    assert by_kind["Deployment"]["spec"]["replicas"] == 2
    image = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.example.com/igw/epp:0.1.0"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_bbr_install_renders_with_the_built_image(provider: str, helm: Helm) -> None:
    (bbr,) = [argv for argv in helm_installs() if argv[3] == "charts/bbr"]
    docs = render_as_documented(helm, bbr, provider)
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.example.com/igw/bbr:0.1.0"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_provider_has_its_gateway_file(provider: str) -> None:
    path = EXAMPLES / f"gateway-{provider}.yaml"
    assert f"kubectl apply -f examples/kubernetes/{path.name}" in deploy_section()
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    (gateway,) = [d for d in docs if d["kind"] == "Gateway"]
    assert gateway["metadata"]["name"] == "inference-gateway"
    assert gateway["spec"]["gatewayClassName"] == GATEWAY_CLASSES[provider]
    assert gateway["spec"]["listeners"] == [{"name": "http", "protocol": "HTTP", "port": 80}]


def test_the_charts_attach_to_the_example_gateway_name() -> None:
    bbr = yaml.safe_load((ROOT / "charts" / "bbr" / "values.yaml").read_text(encoding="utf-8"))
    assert bbr["inferenceGateway"]["name"] == "inference-gateway"
    assert bbr["provider"]["envoyGateway"]["gateway"]["name"] == "inference-gateway"
    epp = yaml.safe_load((ROOT / "charts" / "epp" / "values.yaml").read_text(encoding="utf-8"))
    assert epp["experimentalHttpRoute"]["inferenceGatewayName"] == "inference-gateway"


def test_the_adapter_configmap_is_one_the_bbr_reads() -> None:
    path = EXAMPLES / "adapters-configmap.yaml"
    assert f"kubectl apply -f examples/kubernetes/{path.name}" in deploy_section()
    configmap = yaml.safe_load(path.read_text(encoding="utf-8"))
    kubernetes_validate.validate(configmap, kubernetes_validate.latest_version(), strict=True)
    assert configmap["metadata"]["labels"] == {BBR_MANAGED_LABEL: "true"}
    assert parse_configmap_data(configmap["data"]) == AdapterSet(
        "meta-llama/Llama-3.1-8B-Instruct", frozenset({"food-review-1", "ski-resorts"})
    )
