"""Example objects validated against the CRDs' `openAPIV3Schema`s (`charts/crds/`): the
objects igw works with are accepted, malformed ones refused.

`jsonschema` (Draft 7) checks types, required fields, enums, min/max, lengths, patterns,
item and property counts. It ignores `x-kubernetes-*` and does not apply `default`s, so
**the CEL rules (unique target port numbers, `endpointPickerRef.port` required for a
Service) are not evaluated here**: `test_crd_structure.py` asserts their presence, their
behaviour needs an API server. Nor are label-key validation and `format`s checked.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from igw.epp.testing import kube_objects

# The fixtures of conftest.py.
CrdLoad = Callable[[str], dict[str, Any]]
CrdErrors = Callable[[str, dict[str, Any]], list[str]]
CrdAt = Callable[[dict[str, Any], str], dict[str, Any]]

POOL = "inferencepools.inference.networking.k8s.io.yaml"
OBJECTIVE = "inferenceobjectives.inference.networking.x-k8s.io.yaml"
REWRITE = "inferencemodelrewrites.inference.networking.x-k8s.io.yaml"

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
def test_valid_pools(obj: dict[str, Any], crd_errors: CrdErrors) -> None:
    assert crd_errors(POOL, obj) == []


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
def test_invalid_pools(obj: dict[str, Any], crd_errors: CrdErrors) -> None:
    assert crd_errors(POOL, obj) != []


def test_cel_only_rules_pass_jsonschema(crd_errors: CrdErrors) -> None:
    """What only CEL refuses: the schema alone lets duplicate ports and a portless Service
    reference through (an API server would refuse both)."""
    assert crd_errors(POOL, kube_objects.inference_pool("p", {"a": "b"}, [8000, 8000])) == []
    assert crd_errors(POOL, _pool(endpointPickerRef={"name": "epp"})) == []


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
def test_valid_objectives(spec: dict[str, Any], crd_errors: CrdErrors) -> None:
    assert crd_errors(OBJECTIVE, _objective(spec)) == []


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
def test_invalid_objectives(spec: dict[str, Any], crd_errors: CrdErrors) -> None:
    assert crd_errors(OBJECTIVE, _objective(spec)) != []


def test_objective_status_conditions(
    crd_schema: CrdLoad, crd_errors: CrdErrors, crd_at: CrdAt
) -> None:
    obj = _objective({"poolRef": {"name": "p"}})
    default = crd_at(crd_schema(OBJECTIVE), ".status.conditions")["default"]
    assert crd_errors(OBJECTIVE, {**obj, "status": {"conditions": default}}) == []
    nine = [{**default[0], "type": f"T{i}"} for i in range(9)]
    assert crd_errors(OBJECTIVE, {**obj, "status": {"conditions": nine}}) != []


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
def test_valid_rewrites(spec: dict[str, Any], crd_errors: CrdErrors) -> None:
    assert crd_errors(REWRITE, _rewrite(spec)) == []


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
def test_invalid_rewrites(spec: dict[str, Any], crd_errors: CrdErrors) -> None:
    assert crd_errors(REWRITE, _rewrite(spec)) != []
