"""The CRDs in `charts/crds/`: well-formed apiextensions.k8s.io/v1 definitions whose
`openAPIV3Schema`s accept the objects igw works with and refuse malformed ones.

Example objects are validated with `jsonschema` (Draft 7), which checks what a JSON Schema
can say: types, required fields, enums, min/max, lengths, patterns, item and property
counts. It ignores the Kubernetes extensions (`x-kubernetes-*`) and does not apply
`default`s, so **the CEL rules (`x-kubernetes-validations`: unique target port numbers,
`endpointPickerRef.port` required for a Service) are not evaluated here**: their presence
is asserted, their behaviour needs an API server. Nor are label-key validation (the API
server's own for map keys) and `format`s checked.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from igw.epp.testing import kube_objects

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


def _load(name: str) -> dict[str, Any]:
    with (CRDS / name).open(encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict)
    return doc


def _schema(name: str) -> dict[str, Any]:
    schema = _load(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def _validator(name: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(_schema(name))


def _errors(name: str, obj: dict[str, Any]) -> list[str]:
    return [e.message for e in _validator(name).iter_errors(obj)]


def _nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for key, sub in schema.get("properties", {}).items():
        yield from _nodes(sub, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}{{}}")


def _at(schema: dict[str, Any], path: str) -> dict[str, Any]:
    nodes = dict(_nodes(schema))
    return nodes[path]


# ---------------------------------------------------------------- the CRDs themselves


@pytest.mark.parametrize("expected", EXPECTED, ids=[e[3] for e in EXPECTED])
def test_crd_structure(expected: tuple[str, str, str, str, str, list[str]]) -> None:
    name, group, version, kind, plural, short = expected
    crd = _load(name)
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


def test_protected_group_is_approved() -> None:
    """`*.k8s.io` CRDs are refused by the API server without the approval annotation."""
    annotations = _load(POOL)["metadata"]["annotations"]
    assert annotations["api-approved.kubernetes.io"].startswith("https://")


@pytest.mark.parametrize("name", FILES)
def test_schema_is_structural_and_valid_json_schema(name: str) -> None:
    schema = _schema(name)
    jsonschema.Draft7Validator.check_schema(schema)
    for path, node in _nodes(schema):
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


def test_pool_cel_rules_present() -> None:
    """Asserted textually only: jsonschema cannot run CEL."""
    schema = _schema(POOL)
    ports = _at(schema, ".spec.targetPorts")
    assert ports["x-kubernetes-validations"] == [
        {
            "message": "port number must be unique",
            "rule": "self.all(p1, self.exists_one(p2, p1.number==p2.number))",
        }
    ]
    assert ports["x-kubernetes-list-type"] == "atomic"
    epp = _at(schema, ".spec.endpointPickerRef")
    [rule] = epp["x-kubernetes-validations"]
    assert rule["rule"] == "self.kind != 'Service' || has(self.port)"


def test_pool_defaults() -> None:
    schema = _schema(POOL)
    assert _at(schema, ".spec.appProtocol")["default"] == "http"
    assert _at(schema, ".spec.endpointPickerRef.group")["default"] == ""
    assert _at(schema, ".spec.endpointPickerRef.kind")["default"] == "Service"
    assert _at(schema, ".spec.endpointPickerRef.failureMode")["default"] == "FailClose"
    parent = ".status.parents[].parentRef"
    assert _at(schema, f"{parent}.group")["default"] == "gateway.networking.k8s.io"
    assert _at(schema, f"{parent}.kind")["default"] == "Gateway"


@pytest.mark.parametrize("name", [OBJECTIVE, REWRITE])
def test_pool_ref_defaults(name: str) -> None:
    schema = _schema(name)
    assert _at(schema, ".spec.poolRef.group")["default"] == "inference.networking.k8s.io"
    assert _at(schema, ".spec.poolRef.kind")["default"] == "InferencePool"


def test_printer_columns() -> None:
    def columns(name: str) -> list[tuple[str, str, str]]:
        ver = _load(name)["spec"]["versions"][0]
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


# ---------------------------------------------------------------- InferencePool instances


def _pool(**spec: Any) -> dict[str, Any]:
    obj = kube_objects.inference_pool("pool", {"app": "vllm"}, [8000])
    obj["spec"].update(spec)
    return obj


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(kube_objects.inference_pool("p", {"app": "vllm"}, [8000]), id="minimal"),
        pytest.param(
            kube_objects.inference_pool("p", {"app": "v", "tier": "a"}, range(8000, 8008)),
            id="8-ports",
        ),
        pytest.param(
            kube_objects.inference_pool(
                "p", {"a": "b"}, [1, 65535], app_protocol="kubernetes.io/h2c"
            ),
            id="h2c-port-bounds",
        ),
        pytest.param(
            kube_objects.inference_pool(
                "p", {"a": "b"}, [8000], app_protocol="http", deleting=True
            ),
            id="http-deleting",
        ),
        pytest.param(
            _pool(
                endpointPickerRef={
                    "group": "",
                    "kind": "Service",
                    "name": "epp",
                    "port": {"number": 9002},
                    "failureMode": "FailOpen",
                }
            ),
            id="full-epp-ref",
        ),
        pytest.param(
            _pool(endpointPickerRef={"group": "example.com", "kind": "Picker", "name": "x"}),
            id="non-service-ref-without-port",
        ),
        pytest.param(_pool(selector={"matchLabels": {"example.com/role": ""}}), id="empty-value"),
        pytest.param(
            {
                **_pool(),
                "status": {
                    "parents": [
                        {
                            "parentRef": {"name": "gw", "namespace": "ns"},
                            "controllerName": "example.net/gateway-controller",
                            "conditions": [
                                {
                                    "type": "Accepted",
                                    "status": "True",
                                    "reason": "SupportedByParent",
                                    "message": "",
                                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                                    "observedGeneration": 1,
                                }
                            ],
                        }
                    ]
                },
            },
            id="with-status",
        ),
    ],
)
def test_valid_pools(obj: dict[str, Any]) -> None:
    assert _errors(POOL, obj) == []


def _without(obj: dict[str, Any], *path: str) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    node = obj
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return obj


_EPP: dict[str, Any] = {"name": "epp", "port": {"number": 9002}}


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(kube_objects.inference_pool("p", {"a": "b"}, range(8000, 8009)), id="9-ports"),
        pytest.param(kube_objects.inference_pool("p", {"a": "b"}, []), id="no-ports"),
        pytest.param(kube_objects.inference_pool("p", {"a": "b"}, [0]), id="port-0"),
        pytest.param(kube_objects.inference_pool("p", {"a": "b"}, [65536]), id="port-65536"),
        pytest.param(_pool(targetPorts=[{"number": "8000"}]), id="port-string"),
        pytest.param(_pool(targetPorts=[{}]), id="port-without-number"),
        pytest.param(kube_objects.inference_pool("p", {}, [8000]), id="no-labels"),
        pytest.param(
            kube_objects.inference_pool("p", {f"k{i}": "v" for i in range(65)}, [8000]),
            id="65-labels",
        ),
        pytest.param(_pool(selector={"matchLabels": {"a": "-bad-"}}), id="bad-label-value"),
        pytest.param(_pool(selector={"matchLabels": {"a": "x" * 64}}), id="long-label-value"),
        pytest.param(_pool(selector={}), id="no-match-labels"),
        pytest.param(_pool(appProtocol="grpc"), id="bad-app-protocol"),
        pytest.param(_pool(endpointPickerRef={"port": {"number": 9002}}), id="epp-ref-no-name"),
        pytest.param(_pool(endpointPickerRef={**_EPP, "name": ""}), id="epp-ref-empty-name"),
        pytest.param(
            _pool(endpointPickerRef={**_EPP, "failureMode": "Open"}), id="bad-failure-mode"
        ),
        pytest.param(_pool(endpointPickerRef={**_EPP, "port": {"number": 0}}), id="epp-port-0"),
        pytest.param(_pool(endpointPickerRef={**_EPP, "kind": "a/b"}), id="bad-kind"),
        pytest.param(_pool(endpointPickerRef={**_EPP, "group": "Example.com"}), id="bad-group"),
        pytest.param(_without(_pool(), "spec", "endpointPickerRef"), id="no-epp-ref"),
        pytest.param(_without(_pool(), "spec", "selector"), id="no-selector"),
        pytest.param(_without(_pool(), "spec"), id="no-spec"),
        pytest.param(
            {**_pool(), "status": {"parents": [{"parentRef": {"name": "gw"}}] * 33}},
            id="33-parents",
        ),
        pytest.param(
            {
                **_pool(),
                "status": {"parents": [{"parentRef": {"name": "gw"}, "controllerName": "x"}]},
            },
            id="controller-name-without-path",
        ),
        pytest.param(
            {
                **_pool(),
                "status": {
                    "parents": [
                        {
                            "parentRef": {"name": "gw"},
                            "conditions": [{"type": "Accepted", "status": "Yes", "reason": "R"}],
                        }
                    ]
                },
            },
            id="bad-condition",
        ),
    ],
)
def test_invalid_pools(obj: dict[str, Any]) -> None:
    assert _errors(POOL, obj) != []


def test_cel_only_rules_pass_jsonschema() -> None:
    """What only CEL refuses: the schema alone lets duplicate ports and a portless Service
    reference through (an API server would refuse both)."""
    assert _errors(POOL, kube_objects.inference_pool("p", {"a": "b"}, [8000, 8000])) == []
    assert _errors(POOL, _pool(endpointPickerRef={"name": "epp"})) == []


# ---------------------------------------------------------------- v1alpha2 instances


def _objective(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferenceObjective",
        "metadata": {"name": "critical", "namespace": "ns"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    "spec",
    [
        {"poolRef": {"name": "pool"}},
        {"priority": 10, "poolRef": {"name": "pool"}},
        {"priority": -10, "poolRef": {"name": "p", "group": "inference.networking.k8s.io"}},
        {"priority": 0, "poolRef": {"name": "p", "group": "", "kind": "InferencePool"}},
    ],
)
def test_valid_objectives(spec: dict[str, Any]) -> None:
    assert _errors(OBJECTIVE, _objective(spec)) == []


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({}, id="no-pool-ref"),
        pytest.param({"poolRef": {}}, id="pool-ref-without-name"),
        pytest.param({"poolRef": "pool"}, id="pool-ref-string"),
        pytest.param({"poolRef": {"name": ""}}, id="empty-name"),
        pytest.param({"poolRef": {"name": "p"}, "priority": "high"}, id="priority-string"),
        pytest.param({"poolRef": {"name": "p"}, "priority": 1.5}, id="priority-float"),
        pytest.param({"poolRef": {"name": "p", "group": "x.io/y"}}, id="bad-group"),
    ],
)
def test_invalid_objectives(spec: dict[str, Any]) -> None:
    assert _errors(OBJECTIVE, _objective(spec)) != []


def test_objective_status_conditions() -> None:
    obj = _objective({"poolRef": {"name": "p"}})
    default = _at(_schema(OBJECTIVE), ".status.conditions")["default"]
    assert _errors(OBJECTIVE, {**obj, "status": {"conditions": default}}) == []
    nine = [{**default[0], "type": f"T{i}"} for i in range(9)]
    assert _errors(OBJECTIVE, {**obj, "status": {"conditions": nine}}) != []


def _rewrite(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "inference.networking.x-k8s.io/v1alpha2",
        "kind": "InferenceModelRewrite",
        "metadata": {"name": "rw", "namespace": "ns"},
        "spec": spec,
    }


_REF: dict[str, Any] = {"name": "pool"}
_TARGET: dict[str, Any] = {"modelRewrite": "m-v2"}


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"poolRef": _REF, "rules": []}, id="no-rules"),
        pytest.param({"poolRef": _REF, "rules": [{"targets": [_TARGET]}]}, id="generic-rule"),
        pytest.param(
            {
                "poolRef": {
                    "name": "pool",
                    "group": "inference.networking.k8s.io",
                    "kind": "InferencePool",
                },
                "rules": [
                    {
                        "matches": [
                            {"model": {"value": "food-review"}},
                            {"model": {"type": "Exact", "value": "food"}},
                        ],
                        "targets": [
                            {"modelRewrite": "a", "weight": 1},
                            {"modelRewrite": "b", "weight": 1000000},
                        ],
                    }
                ],
            },
            id="exact-weighted",
        ),
        pytest.param({"poolRef": _REF, "rules": [{"matches": []}]}, id="rule-without-targets"),
    ],
)
def test_valid_rewrites(spec: dict[str, Any]) -> None:
    assert _errors(REWRITE, _rewrite(spec)) == []


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param({"rules": []}, id="no-pool-ref"),
        pytest.param({"poolRef": _REF}, id="no-rules"),
        pytest.param({"poolRef": {}, "rules": []}, id="pool-ref-without-name"),
        pytest.param({"poolRef": _REF, "rules": [{"targets": []}]}, id="empty-targets"),
        pytest.param(
            {"poolRef": _REF, "rules": [{"targets": [{**_TARGET, "weight": 0}]}]}, id="weight-0"
        ),
        pytest.param(
            {"poolRef": _REF, "rules": [{"targets": [{**_TARGET, "weight": 1000001}]}]},
            id="weight-too-big",
        ),
        pytest.param({"poolRef": _REF, "rules": [{"targets": [{"weight": 1}]}]}, id="no-rewrite"),
        pytest.param(
            {"poolRef": _REF, "rules": [{"matches": [{}], "targets": [_TARGET]}]}, id="no-model"
        ),
        pytest.param(
            {"poolRef": _REF, "rules": [{"matches": [{"model": {"value": ""}}]}]},
            id="empty-model-value",
        ),
        pytest.param(
            {
                "poolRef": _REF,
                "rules": [{"matches": [{"model": {"type": "Prefix", "value": "a"}}]}],
            },
            id="bad-match-type",
        ),
        pytest.param(
            {"poolRef": _REF, "rules": [{"matches": [{"model": {"type": "Exact"}}]}]},
            id="match-without-value",
        ),
    ],
)
def test_invalid_rewrites(spec: dict[str, Any]) -> None:
    assert _errors(REWRITE, _rewrite(spec)) != []
