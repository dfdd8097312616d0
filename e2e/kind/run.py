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
6. `helm install` charts/epp (the pool selects the sims, both ports) and charts/bbr, with the
   locally built images and `provider.name=envoy-gateway` (the BBR chart then attaches the BBR to
   the Gateway with an EnvoyExtensionPolicy; `--provider none` applies `bbr-policy.yaml` instead);
7. a Gateway and an HTTPRoute on `X-Gateway-Model-Name` to the InferencePool
   (`e2e/kind/gateway.yaml`);
8. through the gateway (a `kubectl port-forward`): completions, chat, a streamed chat and
   embeddings (string and list) answer 200 with the client-facing model name, both data-parallel
   ports serve (the sim's `x-inference-port` header), and the EPP's `/metrics` has its metrics;
9. `kind delete cluster --name igw-e2e` (unless `--keep`).

The prerequisites come first: a Docker engine that answers `docker info`, and `kind`, `helm` (on
PATH, else the Makefile's `.tools/bin/helm`) and `kubectl`. Without one of them the suite prints
one line saying what is missing and exits 0 (a skip), or 1 with `--require`. `--dry-run` prints
the planned commands (`+ ...`, one a line) without running any after the prerequisite checks.

Only the standard library is used, so any Python 3.11 runs it; every external command goes
through `run` (or `start`, for the port-forwards running in the background), which logs it.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent

CLUSTER = "igw-e2e"
NAMESPACE = "igw-e2e"
SERVICES = ("bbr", "epp", "sim")
IMAGE_REGISTRY = "docker.io"  # what `kind load` names an untagged-registry image inside the node
IMAGE_TAG = "e2e"
MODEL = "food-review"
POOL = "igw-sim"  # the charts/epp release: the InferencePool and the `<pool>-epp` Service
BBR_RELEASE = "bbr"
GATEWAY = "inference-gateway"  # the charts' provider.envoyGateway.gateway.name default
PROVIDERS = ("envoy-gateway", "none")
DP_PORTS = (8000, 8001)

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
EG_NAMESPACE = "envoy-gateway-system"
AIEG_NAMESPACE = "envoy-ai-gateway-system"

# Names the EPP must export after good traffic (upstream's §7 list, the ones this slice checks).
EPP_METRICS = (
    "inference_objective_request_total",
    "inference_objective_request_duration_seconds",
    "inference_objective_input_tokens",
    "inference_objective_output_tokens",
    "inference_pool_ready_pods",
    "inference_pool_average_kv_cache_utilization",
    "inference_pool_average_queue_size",
    "inference_extension_scheduler_e2e_duration_seconds",
    "inference_extension_info",
)


class SuiteError(Exception):
    """A step or a check failed; the message says which."""


def log(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


@dataclass
class Runner:
    """Runs (or, dry, only prints) the suite's external commands: every one passes through here."""

    dry_run: bool = False
    helm: str = "helm"
    # envoy-gateway: the charts render the Envoy Gateway objects (the BBR's EnvoyExtensionPolicy);
    # none: they render none and the suite applies e2e/kind/bbr-policy.yaml itself.
    provider: str = "envoy-gateway"
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(self, cmd: Sequence[str], *, capture: bool = False, timeout_s: float = 900) -> str:
        """Logs `cmd` as `+ ...`, then runs it from the repository root; raises on failure."""
        log("+ " + shlex.join(cmd))
        if self.dry_run:
            return ""
        try:
            done = subprocess.run(  # noqa: S603 - the suite's own fixed commands
                list(cmd),
                cwd=ROOT,
                check=False,
                timeout=timeout_s,
                stdout=subprocess.PIPE if capture else None,
                text=True,
            )
        except subprocess.TimeoutExpired as exc:
            raise SuiteError(f"timed out after {timeout_s:.0f} s: {shlex.join(cmd)}") from exc
        if done.returncode != 0:
            raise SuiteError(f"exit {done.returncode}: {shlex.join(cmd)}")
        return done.stdout or ""

    def start(self, cmd: Sequence[str]) -> None:
        """Logs `cmd` and starts it in the background (stopped by `stop_all`)."""
        log("+ " + shlex.join(cmd) + " &")
        if self.dry_run:
            return
        self.background.append(
            subprocess.Popen(  # noqa: S603 - the suite's own fixed commands
                list(cmd), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )

    def stop_all(self) -> None:
        for process in self.background:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.background.clear()


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
    r.run([
        r.helm, "upgrade", "--install", POOL, str(ROOT / "charts" / "epp"),
        "--namespace", NAMESPACE,
        "--set", "inferencePool.modelServers.matchLabels.app=igw-sim", *ports,
        *provider,
        *_image_values("inferenceExtension", "epp"), "--wait", "--timeout", "5m",
    ])  # fmt: skip
    r.run([
        r.helm, "upgrade", "--install", BBR_RELEASE, str(ROOT / "charts" / "bbr"),
        "--namespace", NAMESPACE,
        *provider, *bbr_mode,
        *_image_values("bbr", "bbr"), "--wait", "--timeout", "5m",
    ])  # fmt: skip


def apply_gateway(r: Runner) -> None:
    r.run(["kubectl", "apply", "-n", NAMESPACE, "-f", str(HERE / "gateway.yaml")])
    if r.provider == "none":
        r.run(["kubectl", "apply", "-n", NAMESPACE, "-f", str(HERE / "bbr-policy.yaml")])
    r.run([
        "kubectl", "wait", "-n", NAMESPACE, f"gateway/{GATEWAY}", "--for=condition=Programmed",
        "--timeout=5m",
    ])  # fmt: skip


def delete_cluster(r: Runner) -> None:
    r.run(["kind", "delete", "cluster", "--name", CLUSTER])


# --- the checks through the gateway ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def request(url: str, payload: object | None = None, *, timeout_s: float = 60) -> Answer:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        url, data=data, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
            headers = {k.lower(): v for k, v in resp.headers.items()}
            return Answer(resp.status, headers, resp.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def wait_until_answering(url: str, payload: object, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = request(url, payload, timeout_s=10)
        except OSError as exc:
            last = str(exc)
        else:
            if answer.status == 200:
                return
            last = f"{answer.status} {answer.body[:200]!r}"
        time.sleep(2)
    raise SuiteError(f"{url} did not answer 200 within {timeout_s:.0f} s: {last}")


def expect_ok(name: str, answer: Answer, ports: set[str]) -> dict[str, object]:
    if answer.status != 200:
        raise SuiteError(f"{name}: {answer.status} {answer.body[:300]!r}")
    ports.add(answer.headers.get("x-inference-port", "?"))
    body: dict[str, object] = json.loads(answer.body)
    if body.get("model") != MODEL:
        raise SuiteError(f"{name}: model {body.get('model')!r}, expected {MODEL!r}")
    log(f"ok: {name} (port {answer.headers.get('x-inference-port')})")
    return body


@contextmanager
def port_forward(r: Runner, namespace: str, target: str, remote: int) -> Iterator[int]:
    local = free_port()
    r.start(["kubectl", "port-forward", "-n", namespace, target, f"{local}:{remote}"])
    try:
        yield local
    finally:
        r.stop_all()


def check_traffic(base: str) -> None:
    ports: set[str] = set()
    completions = {
        "model": MODEL,
        "prompt": "Write as if you were a critic: San Francisco",
        "max_tokens": 16,
    }
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16}
    wait_until_answering(f"{base}/v1/completions", completions)
    expect_ok("completions", request(f"{base}/v1/completions", completions), ports)
    expect_ok("chat completions", request(f"{base}/v1/chat/completions", chat), ports)
    multi_turn = {
        **chat,
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {"role": "user", "content": "Review this dish."},
        ],
    }
    expect_ok(
        "chat completions, multi-turn", request(f"{base}/v1/chat/completions", multi_turn), ports
    )
    for name, text in (("embeddings, string", "food"), ("embeddings, list", ["food", "review"])):
        expect_ok(name, request(f"{base}/v1/embeddings", {"model": MODEL, "input": text}), ports)
    streamed = request(f"{base}/v1/chat/completions", {**chat, "stream": True})
    events = [line for line in streamed.body.decode().splitlines() if line.startswith("data: ")]
    if streamed.status != 200 or not events or events[-1] != "data: [DONE]":
        raise SuiteError(
            f"streamed chat: {streamed.status}, {len(events)} events, last {events[-1:]}"
        )
    first = json.loads(events[0].removeprefix("data: "))
    if first.get("model") != MODEL:
        raise SuiteError(f"streamed chat: model {first.get('model')!r}, expected {MODEL!r}")
    ports.add(streamed.headers.get("x-inference-port", "?"))
    log(f"ok: streamed chat completions ({len(events)} events)")
    for i in range(60):
        if {str(p) for p in DP_PORTS} <= ports:
            break
        prompt = {**completions, "prompt": f"request {i}: a different prefix each time"}
        expect_ok(f"completions #{i}", request(f"{base}/v1/completions", prompt), ports)
    if not {str(p) for p in DP_PORTS} <= ports:
        raise SuiteError(f"data-parallel ports served: {sorted(ports)}, expected {list(DP_PORTS)}")
    log(f"ok: both data-parallel ports served ({sorted(ports)})")
    bad = request(f"{base}/v1/completions", {"model": MODEL, "prompt": 42})
    log(f"ok: bad request answered {bad.status}")


def check_metrics(url: str) -> None:
    answer = request(url)
    if answer.status != 200:
        raise SuiteError(f"EPP /metrics: {answer.status}")
    text = answer.body.decode()
    names = {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"
    }
    missing = [name for name in EPP_METRICS if not any(n.startswith(name) for n in names)]
    if missing:
        raise SuiteError(f"EPP /metrics lacks {missing}")
    log(f"ok: EPP metrics present ({len(EPP_METRICS)} names)")


def run_checks(r: Runner) -> None:
    selector = (
        f"gateway.envoyproxy.io/owning-gateway-namespace={NAMESPACE},"
        f"gateway.envoyproxy.io/owning-gateway-name={GATEWAY}"
    )
    envoy_service = r.run(
        ["kubectl", "get", "service", "-n", EG_NAMESPACE, "-l", selector,
         "-o", "jsonpath={.items[0].metadata.name}"],
        capture=True,
    ).strip()  # fmt: skip
    if r.dry_run:
        envoy_service = "<envoy-service>"
    with port_forward(r, EG_NAMESPACE, f"service/{envoy_service}", 80) as local:
        if not r.dry_run:
            check_traffic(f"http://127.0.0.1:{local}")
    with port_forward(r, NAMESPACE, f"service/{POOL}-epp", 9090) as local:
        if not r.dry_run:
            wait_until_metrics = time.monotonic() + 30
            while True:
                try:
                    check_metrics(f"http://127.0.0.1:{local}/metrics")
                    break
                except (OSError, SuiteError):
                    if time.monotonic() > wait_until_metrics:
                        raise
                    time.sleep(2)


STEPS = (
    create_cluster,
    build_and_load_images,
    install_gateway,
    apply_crds,
    deploy_sims,
    install_charts,
    apply_gateway,
    run_checks,
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
