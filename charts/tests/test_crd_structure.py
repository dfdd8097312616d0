"""The CRDs in `charts/crds/` themselves: well-formed apiextensions.k8s.io/v1 definitions
with structural `openAPIV3Schema`s, the expected names, defaults, CEL rules and printer columns.

The shared helpers (`crd_load`, `crd_schema`, `crd_nodes`, `crd_at`) are fixtures in
`conftest.py`; `test_crd_instances.py` validates example objects against these schemas.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

# The fixtures of conftest.py.
CrdLoad = Callable[[str], dict[str, Any]]
CrdNodes = Callable[..., Iterator[tuple[str, dict[str, Any]]]]
CrdAt = Callable[[dict[str, Any], str], dict[str, Any]]

CRDS = Path(__file__).resolve().parent.parent / "crds"
POOL = "inferencepools.inference.networking.k8s.io.yaml"
OBJECTIVE = "inferenceobjectives.inference.networking.x-k8s.io.yaml"
REWRITE = "inferencemodelrewrites.inference.networking.x-k8s.io.yaml"
FILES = (POOL, OBJECTIVE, REWRITE)

# (file, group, version, kind, plural, short names)
EXPECTED: list[tuple[str, str, str, str, str, list[str]]] = [
    (POOL, "inference.networking.k8s.io", "v1", "InferencePool", "inferencepools", ["infpool"]),
    (
        OBJECTIVE,
        "inference.networking.x-k8s.io",
        "v1alpha2",
        "InferenceObjective",
        "inferenceobjectives",
        [],
    ),
    (
        REWRITE,
        "inference.networking.x-k8s.io",
        "v1alpha2",
        "InferenceModelRewrite",
        "inferencemodelrewrites",
        [],
    ),
]

# Keywords a structural schema may not use (apiextensions v1 rejects them).
_FORBIDDEN = {"$ref", "definitions", "dependencies", "patternProperties", "additionalItems"}
_SCHEMA_KEYWORDS = ("properties", "items", "additionalProperties")

# ---------------------------------------------------------------- the CRDs themselves


@pytest.mark.parametrize("expected", EXPECTED, ids=[e[3] for e in EXPECTED])
def test_crd_structure(
    expected: tuple[str, str, str, str, str, list[str]], crd_load: CrdLoad
) -> None:
    name, group, version, kind, plural, short = expected
    crd = crd_load(name)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{plural}.{group}" == name.removesuffix(".yaml")
    spec = crd["spec"]
    assert spec["group"] == group
    assert spec["scope"] == "Namespaced"
    names = spec["names"]
    assert names["kind"] == kind
    assert names["listKind"] == f"{kind}List"
    assert names["plural"] == plural
    assert names["singular"] == kind.lower()
    assert names.get("shortNames", []) == short
    [ver] = spec["versions"]
    assert ver["name"] == version
    assert ver["served"] is True
    assert ver["storage"] is True
    assert ver["subresources"] == {"status": {}}
    schema = ver["schema"]["openAPIV3Schema"]
    assert schema["type"] == "object"
    assert {"apiVersion", "kind", "metadata", "spec", "status"} <= set(schema["properties"])


def test_protected_group_is_approved(crd_load: CrdLoad) -> None:
    """`*.k8s.io` CRDs are refused by the API server without the approval annotation."""
    annotations = crd_load(POOL)["metadata"]["annotations"]
    assert annotations["api-approved.kubernetes.io"].startswith("https://")


@pytest.mark.parametrize("name", FILES)
def test_schema_is_structural_and_valid_json_schema(
    name: str, crd_schema: CrdLoad, crd_nodes: CrdNodes
) -> None:
    schema = crd_schema(name)
    jsonschema.Draft7Validator.check_schema(schema)
    for path, node in crd_nodes(schema):
        for key in _SCHEMA_KEYWORDS:
            assert isinstance(node.get(key, {}), dict), f"{name}{path}: {key} is not a schema"
        assert "type" in node, f"{name}{path}: every node of a structural schema has a type"
        assert not _FORBIDDEN & set(node), f"{name}{path}: forbidden keyword"
        assert not ("properties" in node and "additionalProperties" in node), (
            f"{name}{path}: properties and additionalProperties are exclusive"
        )
        if "properties" in node or "additionalProperties" in node:
            assert node["type"] == "object"
        if "items" in node:
            assert node["type"] == "array"
        for field in node.get("required", []):
            assert field in node.get("properties", {}), f"{name}{path}: required {field}"
        if "default" in node:
            assert not list(jsonschema.Draft7Validator(node).iter_errors(node["default"])), (
                f"{name}{path}: default does not validate"
            )


def test_all_yaml_is_the_three_files_concatenated() -> None:
    parts = "".join((CRDS / f).read_text(encoding="utf-8") for f in FILES)
    assert (CRDS / "all.yaml").read_text(encoding="utf-8") == parts
    with (CRDS / "all.yaml").open(encoding="utf-8") as f:
        docs = list(yaml.safe_load_all(f))
    assert [d["metadata"]["name"] for d in docs] == [f.removesuffix(".yaml") for f in FILES]


def test_pool_cel_rules_present(crd_schema: CrdLoad, crd_at: CrdAt) -> None:
    """Asserted textually only: jsonschema cannot run CEL."""
    schema = crd_schema(POOL)
    ports = crd_at(schema, ".spec.targetPorts")
    assert ports["x-kubernetes-validations"] == [
        {
            "message": "port number must be unique",
            "rule": "self.all(p1, self.exists_one(p2, p1.number==p2.number))",
        }
    ]
    assert ports["x-kubernetes-list-type"] == "atomic"
    epp = crd_at(schema, ".spec.endpointPickerRef")
    [rule] = epp["x-kubernetes-validations"]
    assert rule["rule"] == "self.kind != 'Service' || has(self.port)"


def test_pool_defaults(crd_schema: CrdLoad, crd_at: CrdAt) -> None:
    schema = crd_schema(POOL)
    assert crd_at(schema, ".spec.appProtocol")["default"] == "http"
    assert crd_at(schema, ".spec.endpointPickerRef.group")["default"] == ""
    assert crd_at(schema, ".spec.endpointPickerRef.kind")["default"] == "Service"
    assert crd_at(schema, ".spec.endpointPickerRef.failureMode")["default"] == "FailClose"
    parent = ".status.parents[].parentRef"
    assert crd_at(schema, f"{parent}.group")["default"] == "gateway.networking.k8s.io"
    assert crd_at(schema, f"{parent}.kind")["default"] == "Gateway"


@pytest.mark.parametrize("name", [OBJECTIVE, REWRITE])
def test_pool_ref_defaults(name: str, crd_schema: CrdLoad, crd_at: CrdAt) -> None:
    schema = crd_schema(name)
    assert crd_at(schema, ".spec.poolRef.group")["default"] == "inference.networking.k8s.io"
    assert crd_at(schema, ".spec.poolRef.kind")["default"] == "InferencePool"


def test_printer_columns(crd_load: CrdLoad) -> None:
    def columns(name: str) -> list[tuple[str, str, str]]:
        ver = crd_load(name)["spec"]["versions"][0]
        return [
            (c["name"], c["type"], c["jsonPath"]) for c in ver.get("additionalPrinterColumns", [])
        ]

    pool, age = ".spec.poolRef.name", ".metadata.creationTimestamp"
    assert columns(POOL) == []  # upstream declares none: kubectl shows NAME and AGE
    assert columns(OBJECTIVE) == [
        ("Inference Pool", "string", pool),
        ("Priority", "string", ".spec.priority"),
        ("Age", "date", age),
    ]
    assert columns(REWRITE) == [("Inference Pool", "string", pool), ("Age", "date", age)]
