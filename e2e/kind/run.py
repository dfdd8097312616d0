#!/usr/bin/env python3
"""The kind suite (`make e2e-kind`): igw's images, CRDs and charts behind a real Envoy Gateway.

What upstream's `test/e2e/epp` checks, on a throwaway kind cluster `igw-e2e`:

1. `kind create cluster --name igw-e2e`;
2. `docker build` the bbr, epp and sim images from the repository root (their
   `services/<name>/Dockerfile`) and `kind load docker-image` them;
3. the Gateway API CRDs, Envoy Gateway and the Envoy AI Gateway controller (which gives Envoy
   Gateway its InferencePool backend), all at pinned versions;
4. `kubectl apply -f charts/crds/all.yaml` (our InferencePool, InferenceObjective and
   InferenceModelRewrite CRDs);
5. an igw-sim fleet (`e2e/kind/sim.yaml`: two pods, two data-parallel ranks each on 8000-8001);
6. `helm install` charts/epp (the pool selects the sims, both ports; two EPP replicas, so leader
   election, and `failureMode=FailOpen`) and charts/bbr, with the locally built images and
   `provider.name=envoy-gateway` (the BBR chart then attaches the BBR to the Gateway with an
   EnvoyExtensionPolicy; `--provider none` applies `bbr-policy.yaml` instead). The EPP is not
   installed with `--wait`: its standby is never Ready, so `ha.wait_for_epp` waits for a leader;
7. a Gateway and an HTTPRoute to the InferencePool with rules on `X-Gateway-Model-Name`, on
   `X-Gateway-Base-Model-Name` and a catch-all (`e2e/kind/gateway.yaml`), and the BBR's adapter
   ConfigMap (`e2e/kind/adapters.yaml`);
8. through the gateway (a `kubectl port-forward`): completions, chat, a streamed chat and
   embeddings (string and list) answer 200 with the client-facing model name, both data-parallel
   ports serve (the sim's `x-inference-port` header); a request naming the LoRA adapter is served
   by it through the base-model rule; `GET /v1/models` lists the base model and the adapter; the
   EPP leader's `/metrics` has its metrics (`checks.py`, `adapters.py`);
9. leader failover (delete the leader pod: a standby takes the Lease and requests succeed again)
   and fail-open (the EPP scaled to 0: requests still succeed; then back to two replicas)
   (`ha.py`);
10. `kind delete cluster --name igw-e2e` (unless `--keep`).

The prerequisites come first: a Docker engine that answers `docker info`, and `kind`, `helm` (on
PATH, else the Makefile's `.tools/bin/helm`) and `kubectl`. Without one of them the suite prints
one line saying what is missing and exits 0 (a skip), or 1 with `--require`. `--dry-run` prints
the planned commands (`+ ...`, one a line) without running any after the prerequisite checks.

Only the standard library is used, so any Python 3.11 runs it; every external command goes
through `run` (or `start`, for the port-forwards running in the background), which logs it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# Run as a script (`python e2e/kind/run.py`), only this directory is on sys.path: add the
# repository root so that the sibling modules import as `e2e.kind.*`, as mypy names them.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from e2e.kind.checks import run_checks  # noqa: E402
from e2e.kind.ha import check_fail_open, check_failover, wait_for_epp  # noqa: E402
from e2e.kind.tools import (  # noqa: E402
    BBR_RELEASE,
    CLUSTER,
    DP_PORTS,
    EG_NAMESPACE,
    EPP_REPLICAS,
    GATEWAY,
    HERE,
    IMAGE_REGISTRY,
    IMAGE_TAG,
    NAMESPACE,
    POOL,
    PROVIDERS,
    ROOT,
    SERVICES,
    Runner,
    SuiteError,
    log,
)

# Pinned versions (Envoy AI Gateway v0.4 is released against Envoy Gateway v1.5 and Gateway API
# v1.3; its values files add the InferencePool backend to Envoy Gateway's extension manager).
GATEWAY_API_VERSION = "v1.3.0"
ENVOY_GATEWAY_VERSION = "v1.5.0"
AI_GATEWAY_VERSION = "v0.4.0"
GATEWAY_API_CRDS = (
    "https://github.com/kubernetes-sigs/gateway-api/releases/download/"
    f"{GATEWAY_API_VERSION}/experimental-install.yaml"
)
AI_GATEWAY_RAW = f"https://raw.githubusercontent.com/envoyproxy/ai-gateway/{AI_GATEWAY_VERSION}"
ENVOY_GATEWAY_VALUES = (
    f"{AI_GATEWAY_RAW}/manifests/envoy-gateway-values.yaml",
    f"{AI_GATEWAY_RAW}/examples/inference-pool/envoy-gateway-values-addon.yaml",
)
AIEG_NAMESPACE = "envoy-ai-gateway-system"


# --- prerequisites -----------------------------------------------------------------------------


def find_helm() -> str | None:
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    local = ROOT / ".tools" / "bin" / "helm"
    return str(local) if local.is_file() else None


def docker_problem() -> str | None:
    """None when a Docker engine answers `docker info`, else why not."""
    docker = shutil.which("docker")
    if docker is None:
        return "docker is not on PATH"
    try:
        done = subprocess.run(  # noqa: S603 - a fixed probe
            [docker, "info"], check=False, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "`docker info` timed out (no Docker engine answering)"
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    detail = f": {lines[-1]}" if lines else ""
    return f"`docker info` fails (no Docker engine running){detail}"


def missing_prerequisites() -> list[str]:
    problems = []
    docker = docker_problem()
    if docker:
        problems.append(docker)
    if shutil.which("kind") is None:
        problems.append("kind is not on PATH")
    if find_helm() is None:
        problems.append("helm is not on PATH nor in .tools/bin (make .tools/bin/helm)")
    if shutil.which("kubectl") is None:
        problems.append("kubectl is not on PATH")
    return problems


# --- the steps ---------------------------------------------------------------------------------


def image(service: str) -> str:
    return f"igw/{service}:{IMAGE_TAG}"


def create_cluster(r: Runner) -> None:
    r.run(["kind", "create", "cluster", "--name", CLUSTER, "--wait", "180s"])


def build_and_load_images(r: Runner) -> None:
    for service in SERVICES:
        dockerfile = ROOT / "services" / service / "Dockerfile"
        r.run(["docker", "build", "-f", str(dockerfile), "-t", image(service), str(ROOT)])
    for service in SERVICES:
        r.run(["kind", "load", "docker-image", image(service), "--name", CLUSTER])


def install_gateway(r: Runner) -> None:
    r.run(["kubectl", "apply", "--server-side", "-f", GATEWAY_API_CRDS])
    values = [arg for url in ENVOY_GATEWAY_VALUES for arg in ("-f", url)]
    r.run([
        r.helm, "upgrade", "--install", "eg", "oci://docker.io/envoyproxy/gateway-helm",
        "--version", ENVOY_GATEWAY_VERSION, "--namespace", EG_NAMESPACE, "--create-namespace",
        *values,
    ])  # fmt: skip
    r.run([
        r.helm, "upgrade", "--install", "aieg-crd", "oci://docker.io/envoyproxy/ai-gateway-crds-helm",
        "--version", AI_GATEWAY_VERSION, "--namespace", AIEG_NAMESPACE, "--create-namespace",
    ])  # fmt: skip
    r.run([
        r.helm, "upgrade", "--install", "aieg", "oci://docker.io/envoyproxy/ai-gateway-helm",
        "--version", AI_GATEWAY_VERSION, "--namespace", AIEG_NAMESPACE, "--create-namespace",
    ])  # fmt: skip
    for namespace, deployment in (
        (EG_NAMESPACE, "envoy-gateway"),
        (AIEG_NAMESPACE, "ai-gateway-controller"),
    ):
        r.run([
            "kubectl", "wait", "--timeout=5m", "-n", namespace, f"deployment/{deployment}",
            "--for=condition=Available",
        ])  # fmt: skip


def apply_crds(r: Runner) -> None:
    r.run(["kubectl", "apply", "--server-side", "-f", str(ROOT / "charts" / "crds" / "all.yaml")])


def deploy_sims(r: Runner) -> None:
    r.run(["kubectl", "create", "namespace", NAMESPACE])
    r.run(["kubectl", "apply", "-n", NAMESPACE, "-f", str(HERE / "sim.yaml")])
    r.run(["kubectl", "rollout", "status", "-n", NAMESPACE, "deployment/igw-sim", "--timeout=5m"])


def _image_values(prefix: str, service: str) -> list[str]:
    sets = {
        f"{prefix}.image.registry": IMAGE_REGISTRY,
        f"{prefix}.image.repository": f"igw/{service}",
        f"{prefix}.image.tag": IMAGE_TAG,
        f"{prefix}.image.pullPolicy": "Never",
        # The suite reads /metrics through a port-forward, without a service-account token.
        f"{prefix}.monitoring.prometheus.auth.enabled": "false",
        f"{prefix}.resources.requests.cpu": "100m",
        f"{prefix}.resources.requests.memory": "128Mi",
    }
    return [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]


def install_charts(r: Runner) -> None:
    provider = ["--set", f"provider.name={r.provider}"]
    if r.provider == "envoy-gateway":
        bbr_mode = ["--set", f"provider.envoyGateway.gateway.name={GATEWAY}"]
    else:  # bbr-policy.yaml sends the BBR buffered request bodies
        bbr_mode = ["--set", "bbr.streaming=false"]
    ports = [
        arg
        for i, port in enumerate(DP_PORTS)
        for arg in ("--set", f"inferencePool.targetPorts[{i}].number={port}")
    ]
    ha = [
        "--set", f"inferenceExtension.replicas={EPP_REPLICAS}",
        "--set", "inferenceExtension.failureMode=FailOpen",
    ]  # fmt: skip
    # No --wait: it waits for every replica to be Ready, and a standby never is (ha.py).
    r.run([
        r.helm, "upgrade", "--install", POOL, str(ROOT / "charts" / "epp"),
        "--namespace", NAMESPACE,
        "--set", "inferencePool.modelServers.matchLabels.app=igw-sim", *ports, *ha,
        *provider,
        *_image_values("inferenceExtension", "epp"),
    ])  # fmt: skip
    wait_for_epp(r)
    # Envoy Gateway calls an EnvoyExtensionPolicy's Service in plaintext; charts/bbr turns the
    # BBR's TLS off for provider envoy-gateway, but provider none (bbr-policy.yaml) needs it said.
    plaintext = ["--set", "bbr.secureServing=false"]
    r.run([
        r.helm, "upgrade", "--install", BBR_RELEASE, str(ROOT / "charts" / "bbr"),
        "--namespace", NAMESPACE,
        *provider, *bbr_mode, *plaintext,
        *_image_values("bbr", "bbr"), "--wait", "--timeout", "5m",
    ])  # fmt: skip


def apply_gateway(r: Runner) -> None:
    r.run(["kubectl", "apply", "-n", NAMESPACE, "-f", str(HERE / "gateway.yaml")])
    r.run(["kubectl", "apply", "-n", NAMESPACE, "-f", str(HERE / "adapters.yaml")])
    if r.provider == "none":
        r.run(["kubectl", "apply", "-n", NAMESPACE, "-f", str(HERE / "bbr-policy.yaml")])
    r.run([
        "kubectl", "wait", "-n", NAMESPACE, f"gateway/{GATEWAY}", "--for=condition=Programmed",
        "--timeout=5m",
    ])  # fmt: skip


def delete_cluster(r: Runner) -> None:
    r.run(["kind", "delete", "cluster", "--name", CLUSTER])


STEPS = (
    create_cluster,
    build_and_load_images,
    install_gateway,
    apply_crds,
    deploy_sims,
    install_charts,
    apply_gateway,
    run_checks,  # traffic, adapters, metrics: one steady leader
    check_failover,
    check_fail_open,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--require", action="store_true", help="missing prerequisites fail (exit 1)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the kind cluster afterwards")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    parser.add_argument(
        "--provider",
        choices=PROVIDERS,
        default="envoy-gateway",
        help="the charts' provider.name (none: the suite applies the BBR's policy itself)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_prerequisites()
    if missing:
        verdict = "failed" if args.require else "skipped"
        log(f"e2e-kind {verdict}: cannot run here: {'; '.join(missing)}")
        return 1 if args.require else 0
    runner = Runner(dry_run=args.dry_run, helm=find_helm() or "helm", provider=args.provider)
    created = False
    try:
        for step in STEPS:
            log(f"== {step.__name__}")
            step(runner)
            created = True
    except SuiteError as exc:
        log(f"e2e-kind failed: {exc}")
        return 1
    finally:
        runner.stop_all()
        if created and not args.keep:
            log("== delete_cluster")
            try:
                delete_cluster(runner)
            except SuiteError as exc:
                log(f"e2e-kind: could not delete the cluster: {exc}")
    log("e2e-kind passed" if not args.dry_run else "e2e-kind dry run: nothing was run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
