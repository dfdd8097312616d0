"""Shared fixtures for the chart tests."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

# ---------------------------------------------------------------- CRDs (test_crd_*.py)

CRDS = Path(__file__).resolve().parent.parent / "crds"

CrdLoad = Callable[[str], dict[str, Any]]
CrdErrors = Callable[[str, dict[str, Any]], list[str]]
CrdNodes = Callable[..., Iterator[tuple[str, dict[str, Any]]]]
CrdAt = Callable[[dict[str, Any], str], dict[str, Any]]


def _crd_load(name: str) -> dict[str, Any]:
    with (CRDS / name).open(encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict)
    return doc


def _crd_schema(name: str) -> dict[str, Any]:
    schema = _crd_load(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def _crd_nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from _crd_nodes(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from _crd_nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _crd_nodes(schema["additionalProperties"], f"{path}{{}}")


@pytest.fixture
def crd_load() -> CrdLoad:
    """`crd_load(file)`: the parsed CRD document `charts/crds/<file>`."""
    return _crd_load


@pytest.fixture
def crd_schema() -> CrdLoad:
    """`crd_schema(file)`: the `openAPIV3Schema` of the CRD's single version."""
    return _crd_schema


@pytest.fixture
def crd_errors() -> CrdErrors:
    """`crd_errors(file, obj)`: the Draft 7 validation error messages of `obj`."""

    def errors(name: str, obj: dict[str, Any]) -> list[str]:
        validator = jsonschema.Draft7Validator(_crd_schema(name))
        return [e.message for e in validator.iter_errors(obj)]

    return errors


@pytest.fixture
def crd_nodes() -> CrdNodes:
    """`crd_nodes(schema)`: every `(path, node)` of a schema, e.g. `.spec.targetPorts[]`."""
    return _crd_nodes


@pytest.fixture
def crd_at() -> CrdAt:
    """`crd_at(schema, path)`: the schema node at a `crd_nodes` path."""

    def at(schema: dict[str, Any], path: str) -> dict[str, Any]:
        return dict(_crd_nodes(schema))[path]

    return at


# ------------------------------------------- Helm charts (test_chart_epp.py, test_chart_bbr.py)

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
HELM = ROOT / ".tools" / "bin" / "helm"
CHART_POOL = "llama"
CHART_NS = "serving"

Obj = dict[str, Any]


def _helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if not HELM.is_file():
        pytest.fail(f"{HELM} is missing: install it with `make .tools/bin/helm` (`make unit` does)")
    proc = subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, timeout=60, check=False
    )
    if check and proc.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _one(docs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {kind} named {name}: {[d['kind'] for d in docs]}"
    return found[0]


@pytest.fixture
def helm() -> Callable[..., subprocess.CompletedProcess[str]]:
    """`helm(*args, check=True)`: run `.tools/bin/helm`; fail the test if it fails and `check`."""
    return _helm


@pytest.fixture
def render() -> Callable[..., list[Obj]]:
    """`render(chart, *args, release=, namespace=)`: the documents `helm template` renders."""

    def render(
        chart: str, *args: str, release: str = CHART_POOL, namespace: str = CHART_NS
    ) -> list[Obj]:
        out = _helm("template", release, str(CHARTS / chart), "--namespace", namespace, *args)
        return [d for d in yaml.safe_load_all(out.stdout) if d]

    return render


@pytest.fixture
def one() -> Callable[..., Obj]:
    """`one(docs, kind, name=None)`: the single document of that kind (and name)."""
    return _one


@pytest.fixture
def container() -> Callable[[list[Obj], str], Obj]:
    """`container(docs, name)`: the Deployment's only container, asserted to be `name`."""

    def container(docs: list[Obj], name: str) -> Obj:
        containers: list[Obj] = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
        assert [c["name"] for c in containers] == [name]
        return containers[0]

    return container


@pytest.fixture
def bound_to_sa() -> Callable[..., None]:
    """`bound_to_sa(binding, role, sa, namespace=)`: the binding grants `role` to that SA only."""

    def bound_to_sa(binding: Obj, role: Obj, sa: str, namespace: str = CHART_NS) -> None:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role["kind"],
            "name": role["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa, "namespace": namespace}
        ]

    return bound_to_sa


@pytest.fixture
def metrics_auth_rules() -> list[Obj]:
    """The RBAC rules a service needs to authenticate and authorize `/metrics` scrapes."""
    return [
        {
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["tokenreviews"],
            "verbs": ["create"],
        },
        {
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["subjectaccessreviews"],
            "verbs": ["create"],
        },
    ]
