"""Every example in docs/ and README.md runs, or, when marked as needing a cluster, a running
gateway or a long time, at least parses (the convention: docs/contributing.md).

Shell blocks run with `bash -euo pipefail` from the repository root with `.venv/bin` first on
PATH; marked ones get `bash -n`. Python blocks run in a fresh interpreter. YAML blocks are parsed
and then validated by what reads them: the EPP's config loader, our CRD schemas, Kubernetes'
schemas, the BBR's adapter-file parser.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from igw.bbr.sources import parse_adapter_file
from igw.epp.config import load_config
from tools.docsgen.snippets import Snippet, snippets

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
ALL = [s for path in DOCUMENTS for s in snippets(path, ROOT)]
CRDS = {
    doc["spec"]["names"]["kind"]: doc
    for path in (ROOT / "charts" / "crds").glob("*.*.yaml")
    for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
    if doc
}
TIMEOUT_S = 60


def _of(*languages: str) -> list[Any]:
    return [pytest.param(s, id=s.id) for s in ALL if s.language in languages]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Runs `argv` in a session of its own, so a timeout ends every process it started."""
    with subprocess.Popen(
        argv, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    ) as process:  # fmt: skip
        try:
            out, err = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            err += f"\n(killed after {TIMEOUT_S} s: mark the block, docs/contributing.md)"
        return subprocess.CompletedProcess(argv, process.returncode, out, err)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.parametrize("snippet", _of("bash", "sh", "shell"))
def test_shell_examples_run_or_parse(snippet: Snippet) -> None:
    argv = ["bash", "-euo", "pipefail", "-c", snippet.body]
    if not snippet.runs:
        argv = ["bash", "-n", "-c", snippet.body]
    done = _run(argv)
    assert done.returncode == 0, f"{snippet.id} exited {done.returncode}:\n{done.stderr[-2000:]}"


@pytest.mark.parametrize("snippet", _of("python", "py"))
def test_python_examples_run_or_compile(snippet: Snippet) -> None:
    if not snippet.runs:
        compile(snippet.body, snippet.id, "exec")
        return
    done = _run([sys.executable, "-c", snippet.body])
    assert done.returncode == 0, f"{snippet.id} failed:\n{done.stderr[-2000:]}"


def _validate(doc: dict[str, Any], text: str) -> None:
    kind = doc.get("kind")
    if kind == "EndpointPickerConfig":
        load_config(text)
    elif kind in CRDS:
        versions = CRDS[kind]["spec"]["versions"]
        (version,) = [v for v in versions if doc["apiVersion"].endswith("/" + v["name"])]
        jsonschema.validate(doc, version["schema"]["openAPIV3Schema"])
    elif kind is not None:  # a core object: Kubernetes' own schema
        try:
            kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
        except FileNotFoundError:  # no schema: another project's resource
            pytest.fail(f"no schema for {doc['apiVersion']} {kind}: title it needs a cluster")
    else:
        # No kind: the only kind-less document the docs show is the BBR's adapter file.
        assert "baseModels" in doc, "a YAML example should say what reads it (kind:)"
        assert parse_adapter_file(text, Path("adapters.yaml"))


@pytest.mark.parametrize("snippet", _of("yaml", "yml"))
def test_yaml_examples_are_what_their_readers_accept(snippet: Snippet) -> None:
    docs = [d for d in yaml.safe_load_all(snippet.body) if d is not None]
    assert docs, f"{snippet.id}: an empty YAML block"
    for doc in docs:
        assert isinstance(doc, dict), f"{snippet.id}: not a mapping"
        if snippet.runs:  # a marked block (e.g. a gateway's own resource) is only parsed
            _validate(doc, snippet.body)


def test_every_marked_block_uses_a_known_mark() -> None:
    titles = {s.title for s in ALL if s.language in ("bash", "sh", "python", "yaml")}
    # A typo in a mark would make a cluster-only block run here: only the marks, or no title
    # (a YAML block may also name its file).
    files = {t for t in titles if t.endswith((".yaml", ".yml"))}
    assert titles - files <= {"", "needs a cluster", "needs the local gateway", "long-running"}
