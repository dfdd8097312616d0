"""`e2e/kind/run.py` (`make e2e-kind`) up to its first Docker call, against stub executables.

PATH is a temp dir of stubs (or holds no `docker` at all), so no real Docker, kind, helm or
kubectl is ever reached: the prerequisite checks skip or fail in one line, and `--dry-run`
prints the planned command sequence while the stubs record that only `docker info` ran. The
checks' pure parts (kubectl's pod list, the Lease holder, the BBR's model list) are tested on
realistic input: kubectl's JSON, our elector's identity, the BBR's own `GET /v1/models` answer.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from e2e.kind import adapters, ha
from e2e.kind.client import Answer
from e2e.kind.tools import ADAPTER, EPP_LEASE, MODEL, SuiteError
from igw.bbr.adapters import BBR_MANAGED_LABEL, AdapterIndex, AdapterSet, parse_configmap_data
from igw.common.kube._lease import new_identity
from igw.sim.openai_shapes import model_list

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


def _sets(cmd: list[str]) -> set[str]:
    return {cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--set"}


def _assert_chart_installs(plan: list[list[str]], epp: int, bbr: int, helm: str) -> None:
    assert plan[epp][:4] == [helm, "upgrade", "--install", "igw-sim"]
    assert plan[bbr][:4] == [helm, "upgrade", "--install", "bbr"]
    assert {
        "inferencePool.modelServers.matchLabels.app=igw-sim",
        "inferencePool.targetPorts[0].number=8000",
        "inferencePool.targetPorts[1].number=8001",
        "inferenceExtension.image.repository=igw/epp",
        "inferenceExtension.image.tag=e2e",
        "inferenceExtension.image.pullPolicy=Never",
        "inferenceExtension.replicas=2",  # leader election, for the failover check
        "inferenceExtension.failureMode=FailOpen",  # the fail-open check's premise
        "provider.name=envoy-gateway",
    } <= _sets(plan[epp])
    assert "--wait" not in plan[epp]  # a standby is never Ready: the suite waits for a leader
    # Right after the EPP's install, the suite waits on its pods and its Lease.
    assert [cmd[:3] for cmd in plan[epp + 1 : epp + 3]] == [
        ["kubectl", "get", "pods"], ["kubectl", "get", "lease"]
    ]  # fmt: skip
    assert f"--field-selector=metadata.name={EPP_LEASE}" in plan[epp + 2]
    assert epp + 2 < bbr
    assert {
        "bbr.image.repository=igw/bbr",
        "bbr.image.tag=e2e",
        "provider.name=envoy-gateway",
        "provider.envoyGateway.gateway.name=inference-gateway",
        "bbr.secureServing=false",  # Envoy Gateway calls the BBR in plaintext
    } <= _sets(plan[bbr])


def _assert_ha_plan(plan: list[list[str]], first_forward: int) -> None:
    """Metrics from the leader pod, then failover, then fail-open, the EPP restored last."""
    forwards = [i for i, cmd in enumerate(plan) if "port-forward" in cmd]
    metrics = [i for i in forwards if plan[i][5].endswith(":9090")]  # the last word is "&"
    assert [plan[i][4] for i in metrics] == ["pod/<leader>"]  # the Lease holder, not the Service
    delete = plan.index(["kubectl", "delete", "pod", "-n", "igw-e2e", "<leader>", "--wait=false"])
    scale = ["kubectl", "scale", "-n", "igw-e2e", "deployment/igw-sim-epp"]
    down, up = plan.index([*scale, "--replicas=0"]), plan.index([*scale, "--replicas=2"])
    assert first_forward < metrics[0] < delete < down < up
    # Each HA check opens its own gateway forward before acting, and then watches the Lease.
    assert any(delete > i > metrics[0] for i in forwards)
    assert any(down > i > delete for i in forwards)
    assert plan[delete + 1][:3] == ["kubectl", "get", "pods"]
    assert plan[up + 1][:3] == ["kubectl", "get", "pods"]  # waits for a leader again
    assert plan[up + 2][:3] == ["kubectl", "get", "lease"]


def test_dry_run_plans_the_whole_suite_and_runs_nothing(bin_dir: Path, record: Path) -> None:
    for tool in TOOLS:
        _stub(bin_dir, tool, record)
    done = _run(bin_dir, "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    plan = _planned(done.stdout)

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
    _assert_chart_installs(plan, epp, bbr, str(bin_dir / "helm"))
    assert "bbr-policy.yaml" not in done.stdout  # the chart renders the BBR's policy

    sims = index(str(ROOT / "e2e" / "kind" / "sim.yaml"))
    gateway = index(str(ROOT / "e2e" / "kind" / "gateway.yaml"))
    adapter_map = index(str(ROOT / "e2e" / "kind" / "adapters.yaml"))
    forward = index("port-forward")
    # The order a cluster needs: cluster, images, gateway, CRDs, sims, charts, routes, checks.
    assert plan.index(builds[-1]) < plan.index(loads[0]) < eg < crds < sims < epp
    assert epp < bbr < gateway < adapter_map < forward
    assert plan[adapter_map][:4] == ["kubectl", "apply", "-n", "igw-e2e"]
    _assert_ha_plan(plan, forward)
    assert plan[-1] == ["kind", "delete", "cluster", "--name", "igw-e2e"]
    assert done.stdout.rstrip().endswith("e2e-kind dry run: nothing was run")


def test_dry_run_keep_leaves_the_cluster(bin_dir: Path, record: Path) -> None:
    for tool in TOOLS:
        _stub(bin_dir, tool, record)
    done = _run(bin_dir, "--dry-run", "--keep")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not any(cmd[:2] == ["kind", "delete"] for cmd in _planned(done.stdout))


def test_manifests_select_what_the_charts_expect() -> None:
    sims = list(yaml.safe_load_all((ROOT / "e2e" / "kind" / "sim.yaml").read_text()))
    (deployment,) = sims
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["labels"]["app"] == "igw-sim"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "docker.io/igw/sim:e2e"
    assert container["imagePullPolicy"] == "Never"
    assert "--data-parallel-size=2" in container["args"]
    assert [p["containerPort"] for p in container["ports"]] == [8000, 8001]
    assert f"--lora-modules={ADAPTER}=/adapters/{ADAPTER}" in container["args"]
    assert f"--model={MODEL}" in container["args"]

    objects = {
        o["kind"]: o
        for name in ("gateway.yaml", "bbr-policy.yaml", "adapters.yaml")
        for o in yaml.safe_load_all((ROOT / "e2e" / "kind" / name).read_text())
    }
    assert objects["Gateway"]["metadata"]["name"] == "inference-gateway"
    rules = objects["HTTPRoute"]["spec"]["rules"]
    # The rule a request ends on, tagged on its response; the catch-all comes last and matches
    # every request first, so the BBR (enabled per route by Envoy Gateway) sees all of them.
    tags = [r["filters"][0]["responseHeaderModifier"]["set"] for r in rules]
    assert tags == [[{"name": "x-igw-e2e-route", "value": v}] for v in
                    ("model-name", "base-model", "catch-all")]  # fmt: skip
    headers = [[(h["name"], h["value"]) for h in r["matches"][0].get("headers", [])] for r in rules]
    assert headers == [[(f"X-Gateway-{h}-Name", MODEL)] for h in ("Model", "Base-Model")] + [[]]
    for rule in rules:
        assert rule["matches"][0]["path"] == {"type": "PathPrefix", "value": "/"}
        assert rule["backendRefs"] == [
            {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "igw-sim"}
        ]
    (ext_proc,) = objects["EnvoyExtensionPolicy"]["spec"]["extProc"]
    assert ext_proc["backendRefs"] == [{"name": "body-based-router", "port": 9004}]
    # The BBR's own parser maps the adapter the sims preload to the base model they serve.
    configmap = objects["ConfigMap"]
    assert configmap["metadata"]["name"] == adapters.ADAPTERS_CONFIGMAP
    assert configmap["metadata"]["labels"] == {BBR_MANAGED_LABEL: "true"}
    assert parse_configmap_data(configmap["data"]) == AdapterSet(MODEL, frozenset({ADAPTER}))


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


LEADER, STANDBY, NEW = (f"igw-sim-epp-7d9f8c6b5-{hash_}" for hash_ in ("x2kqp", "m4zrt", "q9wvh"))
UUID = "_0b7e3f7c-41a9-4a53-9d7e-3c1f2f8f6a10"  # holderIdentity is `<hostname>_<uuid>`


def _pod(name: str, *, ready: bool, deleting: bool = False) -> dict[str, object]:
    """One item of `kubectl get pods -o json`, trimmed to the fields around the ones read."""
    labels = {"inferencepool": "igw-sim-epp", "pod-template-hash": "7d9f8c6b5"}
    gone = {"deletionTimestamp": "2026-12-05T04:31:07Z", "deletionGracePeriodSeconds": 130}
    metadata = {"name": name, "labels": labels} | (gone if deleting else {})
    status = "True" if ready else "False"
    conditions = [
        {"type": "Initialized", "status": "True"},
        {"type": "Ready", "status": status, **({} if ready else {"reason": "ContainersNotReady"})},
        {"type": "ContainersReady", "status": status},
    ]
    return {"metadata": metadata, "status": {"phase": "Running", "conditions": conditions}}


def _pods(*items: dict[str, object]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})


def test_holder_pod_is_the_hostname_our_elector_writes() -> None:
    assert ha.holder_pod(new_identity()) == socket.gethostname()
    assert ha.holder_pod(LEADER + UUID) == LEADER
    assert ha.holder_pod("") is None  # a stopping leader released the Lease


@pytest.mark.parametrize(
    ("pods", "identity", "expected"),
    [
        pytest.param([(LEADER, True), (STANDBY, False)], LEADER + UUID,
                     ha.Leadership(LEADER, (STANDBY,)), id="steady"),
        pytest.param([(LEADER, False), (STANDBY, False)], LEADER + UUID, None,
                     id="elected-not-yet-ready"),
        pytest.param([(LEADER, True)], LEADER + UUID, None, id="a-replica-missing"),
        pytest.param([], "", None, id="no-pods-yet"),
        pytest.param([(LEADER, True), (STANDBY, False)], "", None, id="lease-released"),
        pytest.param([(LEADER, True), (STANDBY, False)], "elsewhere" + UUID, None,
                     id="holder-not-a-pod-of-ours"),
        # After the leader's deletion: it is still terminating, the replacement has started.
        pytest.param([(LEADER, True, True), (STANDBY, True), (NEW, False)], STANDBY + UUID,
                     ha.Leadership(STANDBY, (NEW,)), id="failed-over-deleted-pod-ignored"),
        pytest.param([(LEADER, True, True), (STANDBY, False), (NEW, False)], LEADER + UUID, None,
                     id="terminating-holder"),
    ],
)  # fmt: skip
def test_leadership(
    pods: list[tuple[str, ...]], identity: str, expected: ha.Leadership | None
) -> None:
    items = [_pod(p[0], ready=bool(p[1]), deleting=len(p) > 2) for p in pods]
    assert ha.leadership(ha.parse_pods(_pods(*items)), identity) == expected


@pytest.mark.parametrize(
    ("holder", "expected"),
    [
        pytest.param(LEADER, f"the Lease {EPP_LEASE} still names it", id="never-released"),
        pytest.param("", "the Lease names '', expected a standby", id="nobody-took-it"),
        pytest.param(STANDBY, f"the Lease names {STANDBY} but requests fail: 503", id="no-traffic"),
    ],
)
def test_failover_problem_says_what_went_wrong(holder: str, expected: str) -> None:
    last = Answer(503, {}, b"upstream connect error")
    problem = ha._failover_problem(ha.Leadership(LEADER, (STANDBY,)), holder, last)
    assert problem.startswith(f"60 s after deleting the leader pod {LEADER}, ")
    assert expected in problem


def _bbr_model_list() -> bytes:
    """What the BBR answers to `GET /v1/models` once it has read adapters.yaml."""
    bbr_models = pytest.importorskip("igw.bbr.models")  # the BBR's GET /v1/models
    (configmap,) = (yaml.safe_load((ROOT / "e2e" / "kind" / "adapters.yaml").read_text()),)
    index = AdapterIndex(clock=lambda: 1_764_900_000.0)
    index.reconcile(f"igw-e2e/{configmap['metadata']['name']}", configmap["data"])
    answer = bbr_models.ModelsEndpoint(index).answer({":method": "GET", ":path": "/v1/models"})
    assert answer is not None
    assert answer.status == 200
    return str(answer.body).encode()


def test_model_list_check_accepts_the_bbrs_answer() -> None:
    cards = adapters.parse_model_list(_bbr_model_list())
    assert [(c.id, c.parent) for c in cards] == [(MODEL, None), (ADAPTER, MODEL)]
    adapters.expect_models(cards)


def test_model_list_check_refuses_a_model_servers_answer() -> None:
    """The sims answer the same shape: passed through to a pod, the list is not the BBR's."""
    body = model_list(MODEL, MODEL, 4096, {ADAPTER: f"/adapters/{ADAPTER}"}, 1_764_900_000)
    cards = adapters.parse_model_list(body)
    with pytest.raises(SuiteError, match=r"answered by a model server \(owned_by \['vllm'\]\)"):
        adapters.expect_models(cards)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        pytest.param(b"<html>404</html>", "not JSON", id="not-json"),
        pytest.param(b'{"data": []}', "not OpenAI's list shape", id="no-object"),
        pytest.param(b'{"object": "list", "data": [{"id": "x"}]}', "not a model card",
                     id="bare-entry"),
    ],
)  # fmt: skip
def test_model_list_parse_refuses_other_shapes(body: bytes, match: str) -> None:
    with pytest.raises(SuiteError, match=match):
        adapters.parse_model_list(body)


def test_model_list_check_needs_the_adapter_under_its_base() -> None:
    base = adapters.ModelCard(MODEL, None, "igw")
    with pytest.raises(SuiteError, match=rf"lacks \['{ADAPTER}'\]"):
        adapters.expect_models([base])
    with pytest.raises(SuiteError, match=rf"adapter {ADAPTER} has parent None"):
        adapters.expect_models([base, adapters.ModelCard(ADAPTER, None, "igw")])
