"""`e2e/kind/run.py` (`make e2e-kind`) up to its first Docker call, against stub executables.

PATH is a temp dir of stubs (or holds no `docker` at all), so no real Docker, kind, helm or
kubectl is ever reached: the prerequisite checks skip or fail in one line, and `--dry-run`
prints the planned command sequence while the stubs record that only `docker info` ran.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "e2e" / "kind" / "run.py"
TOOLS = ("docker", "kind", "helm", "kubectl")


def _stub(bin_dir: Path, name: str, record: Path, *, fail: bool = False) -> None:
    """An executable that appends its argv to `record` and exits 0 (or 1 with `fail`)."""
    path = bin_dir / name
    path.write_text(
        "#!/bin/sh\n"
        f'echo "{name} $*" >> {shlex.quote(str(record))}\n'
        + ('echo "Cannot connect to the Docker daemon" >&2\nexit 1\n' if fail else "exit 0\n")
    )
    path.chmod(0o755)


def _run(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # Only the stub directory and the system's own basics (sh for the stubs): never /usr/local/bin
    # or /usr/bin, where a real docker or kubectl may live.
    env = {**os.environ, "PATH": str(bin_dir)}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "argv.log"


def _recorded(record: Path) -> list[str]:
    return record.read_text().splitlines() if record.exists() else []


def test_no_docker_engine_skips_in_one_line(bin_dir: Path, record: Path) -> None:
    for tool in TOOLS:
        _stub(bin_dir, tool, record, fail=tool == "docker")
    done = _run(bin_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    assert lines[0].startswith("e2e-kind skipped: cannot run here: ")
    assert "`docker info` fails (no Docker engine running)" in lines[0]
    assert "Cannot connect to the Docker daemon" in lines[0]
    assert "kind" not in lines[0].removeprefix("e2e-kind skipped")
    assert _recorded(record) == ["docker info"]


def test_missing_tools_are_each_named(bin_dir: Path, record: Path) -> None:
    done = _run(bin_dir)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    assert "docker is not on PATH" in lines[0]
    assert "kind is not on PATH" in lines[0]
    assert "kubectl is not on PATH" in lines[0]
    # helm may still come from the Makefile's .tools/bin/helm; if not, it is named too.
    if not (ROOT / ".tools" / "bin" / "helm").is_file():
        assert "helm is not on PATH" in lines[0]
    assert _recorded(record) == []


def test_require_turns_the_skip_into_a_failure(bin_dir: Path, record: Path) -> None:
    _stub(bin_dir, "docker", record, fail=True)
    done = _run(bin_dir, "--require")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    assert lines[0].startswith("e2e-kind failed: cannot run here: ")


def _planned(stdout: str) -> list[list[str]]:
    return [shlex.split(line[2:]) for line in stdout.splitlines() if line.startswith("+ ")]


def test_dry_run_plans_the_whole_suite_and_runs_nothing(bin_dir: Path, record: Path) -> None:
    for tool in TOOLS:
        _stub(bin_dir, tool, record)
    done = _run(bin_dir, "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    plan = _planned(done.stdout)
    helm = str(bin_dir / "helm")

    # Only the prerequisite probe reached a stub; every step was printed, not run.
    assert _recorded(record) == ["docker info"]

    assert plan[0][:4] == ["kind", "create", "cluster", "--name"]
    assert plan[0][4] == "igw-e2e"

    builds = [cmd for cmd in plan if cmd[:2] == ["docker", "build"]]
    assert len(builds) == 3
    for service, cmd in zip(("bbr", "epp", "sim"), builds, strict=True):
        assert cmd[cmd.index("-f") + 1] == str(ROOT / "services" / service / "Dockerfile")
        assert cmd[cmd.index("-t") + 1] == f"igw/{service}:e2e"
        assert cmd[-1] == str(ROOT)  # the build context is the repository root
    loads = [cmd for cmd in plan if cmd[:3] == ["kind", "load", "docker-image"]]
    assert [cmd[3] for cmd in loads] == ["igw/bbr:e2e", "igw/epp:e2e", "igw/sim:e2e"]
    assert all(cmd[-2:] == ["--name", "igw-e2e"] for cmd in loads)

    def index(predicate: str) -> int:
        hits = [i for i, cmd in enumerate(plan) if predicate in shlex.join(cmd)]
        assert hits, f"no planned command contains {predicate!r}"
        return hits[0]

    crds = index(str(ROOT / "charts" / "crds" / "all.yaml"))
    assert plan[crds][:2] == ["kubectl", "apply"]
    eg = index("oci://docker.io/envoyproxy/gateway-helm")
    assert "--version" in plan[eg]
    assert index("gateway-api/releases/download/") < eg

    epp = index(str(ROOT / "charts" / "epp"))
    bbr = index(str(ROOT / "charts" / "bbr"))
    assert plan[epp][:4] == [helm, "upgrade", "--install", "igw-sim"]
    assert plan[bbr][:4] == [helm, "upgrade", "--install", "bbr"]
    epp_sets = {plan[epp][i + 1] for i, arg in enumerate(plan[epp]) if arg == "--set"}
    assert {
        "inferencePool.modelServers.matchLabels.app=igw-sim",
        "inferencePool.targetPorts[0].number=8000",
        "inferencePool.targetPorts[1].number=8001",
        "inferenceExtension.image.repository=igw/epp",
        "inferenceExtension.image.tag=e2e",
        "inferenceExtension.image.pullPolicy=Never",
    } <= epp_sets
    assert "provider.name=envoy-gateway" in epp_sets
    bbr_sets = {plan[bbr][i + 1] for i, arg in enumerate(plan[bbr]) if arg == "--set"}
    assert {
        "bbr.image.repository=igw/bbr",
        "bbr.image.tag=e2e",
        "provider.name=envoy-gateway",
        "provider.envoyGateway.gateway.name=inference-gateway",
    } <= bbr_sets
    assert "bbr-policy.yaml" not in done.stdout  # the chart renders the BBR's policy

    sims = index(str(ROOT / "e2e" / "kind" / "sim.yaml"))
    gateway = index(str(ROOT / "e2e" / "kind" / "gateway.yaml"))
    forward = index("port-forward")
    # The order a cluster needs: cluster, images, gateway, CRDs, sims, charts, routes, checks.
    assert plan.index(builds[-1]) < plan.index(loads[0]) < eg < crds < sims < epp
    assert epp < bbr < gateway < forward
    assert plan[-1] == ["kind", "delete", "cluster", "--name", "igw-e2e"]
    assert done.stdout.rstrip().endswith("e2e-kind dry run: nothing was run")


def test_dry_run_keep_leaves_the_cluster(bin_dir: Path, record: Path) -> None:
    for tool in TOOLS:
        _stub(bin_dir, tool, record)
    done = _run(bin_dir, "--dry-run", "--keep")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not any(cmd[:2] == ["kind", "delete"] for cmd in _planned(done.stdout))


def test_manifests_select_what_the_charts_expect() -> None:
    yaml = pytest.importorskip("yaml")
    sims = list(yaml.safe_load_all((ROOT / "e2e" / "kind" / "sim.yaml").read_text()))
    (deployment,) = sims
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["app"] == "igw-sim"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "docker.io/igw/sim:e2e"
    assert container["imagePullPolicy"] == "Never"
    assert "--data-parallel-size=2" in container["args"]
    assert [p["containerPort"] for p in container["ports"]] == [8000, 8001]

    objects = {
        o["kind"]: o
        for name in ("gateway.yaml", "bbr-policy.yaml")
        for o in yaml.safe_load_all((ROOT / "e2e" / "kind" / name).read_text())
    }
    assert objects["Gateway"]["metadata"]["name"] == "inference-gateway"
    (rule,) = objects["HTTPRoute"]["spec"]["rules"]
    (header,) = rule["matches"][0]["headers"]
    assert header["name"] == "X-Gateway-Model-Name"
    assert rule["backendRefs"] == [
        {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "igw-sim"}
    ]
    (ext_proc,) = objects["EnvoyExtensionPolicy"]["spec"]["extProc"]
    assert ext_proc["backendRefs"] == [{"name": "body-based-router", "port": 9004}]


def test_dry_run_provider_none_applies_the_bbr_policy(bin_dir: Path, record: Path) -> None:
    for tool in TOOLS:
        _stub(bin_dir, tool, record)
    done = _run(bin_dir, "--dry-run", "--provider", "none")
    assert done.returncode == 0, done.stdout + done.stderr
    plan = [shlex.join(cmd) for cmd in _planned(done.stdout)]
    charts = [cmd for cmd in plan if "/charts/epp" in cmd or "/charts/bbr" in cmd]
    assert len(charts) == 2
    assert all("provider.name=none" in cmd for cmd in charts)
    assert "bbr.streaming=false" in charts[1]
    policy = [i for i, cmd in enumerate(plan) if cmd.endswith("e2e/kind/bbr-policy.yaml")]
    gateway = [i for i, cmd in enumerate(plan) if cmd.endswith("e2e/kind/gateway.yaml")]
    assert len(policy) == 1
    assert gateway[0] < policy[0]
    assert _recorded(record) == ["docker info"]
