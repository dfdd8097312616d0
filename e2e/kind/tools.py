"""The kind suite's shared names and its command runner (see `run.py`).

Every external command the suite issues goes through `Runner.run` (or `Runner.start`, for the
port-forwards running in the background), which logs it as `+ ...` and, dry, runs none.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Sequence
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
ADAPTER = "food-review-1"  # a LoRA adapter the sims preload (sim.yaml), mapped in adapters.yaml
POOL = "igw-sim"  # the charts/epp release: the InferencePool and the `<pool>-epp` Service
ROUTE_HEADER = "x-igw-e2e-route"  # which gateway.yaml rule served a response
EPP_DEPLOYMENT = f"{POOL}-epp"
EPP_SELECTOR = f"inferencepool={POOL}-epp"  # charts/epp's epp.selectorLabels
EPP_REPLICAS = 2  # more than one: the chart turns on leader election
EPP_LEASE = f"epp-{NAMESPACE}-{POOL}.gateway-api-inference-extension.sigs.k8s.io"
BBR_RELEASE = "bbr"
GATEWAY = "inference-gateway"  # the charts' provider.envoyGateway.gateway.name default
PROVIDERS = ("envoy-gateway", "none")
DP_PORTS = (8000, 8001)
EG_NAMESPACE = "envoy-gateway-system"


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

    def start(self, cmd: Sequence[str], *, stdout: bool = False) -> subprocess.Popen[bytes] | None:
        """Logs `cmd` and starts it in the background (stopped by `stop_all`); with `stdout`,
        its output is a pipe the caller reads. None when dry."""
        log("+ " + shlex.join(cmd) + " &")
        if self.dry_run:
            return None
        process = subprocess.Popen(  # noqa: S603 - the suite's own fixed commands
            list(cmd),
            cwd=ROOT,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.background.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.background:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.background.clear()
