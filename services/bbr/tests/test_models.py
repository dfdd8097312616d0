"""igw.bbr.models: the OpenAI `GET /v1/models` (list and retrieve) the BBR answers itself."""

from __future__ import annotations

import json
from typing import Any

import pytest

from igw.bbr.adapters import AdapterIndex
from igw.bbr.models import ModelsEndpoint
from igw.common.extproc import ImmediateAnswer

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
QWEN = "Qwen/Qwen3-0.6B"
LEARNED = 1_764_900_000
JSON = (("content-type", "application/json"),)


def endpoint() -> tuple[ModelsEndpoint, AdapterIndex]:
    index = AdapterIndex(clock=lambda: LEARNED)
    index.reconcile("default/qwen", {"baseModel": QWEN})
    index.reconcile("default/llama", {"baseModel": LLAMA, "adapters": "[sql-lora, food-lora]"})
    return ModelsEndpoint(index), index


def get(models: ModelsEndpoint, path: str, method: str = "GET") -> ImmediateAnswer | None:
    return models.answer({":method": method, ":path": path, ":authority": "igw"})


def answered(answer: ImmediateAnswer | None, status: int = 200) -> Any:
    """The decoded JSON body of an answer with `status`."""
    assert answer is not None
    assert (answer.status, answer.headers) == (status, JSON)
    return json.loads(answer.body)


def model(name: str, parent: str | None = None) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": LEARNED,
        "owned_by": "igw",
        "root": name,
        "parent": parent,
    }


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/v1/models", id="plain"),
        pytest.param("/v1/models?limit=1", id="query-ignored"),
    ],
)
def test_the_list_has_base_models_then_adapters_each_sorted(path: str) -> None:
    models, _ = endpoint()
    assert answered(get(models, path)) == {
        "object": "list",
        # Sorted by code point: "Qwen/..." before "meta-llama/...".
        "data": [
            model(QWEN),
            model(LLAMA),
            model("food-lora", parent=LLAMA),
            model("sql-lora", parent=LLAMA),
        ],
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/v1/models/sql-lora", model("sql-lora", LLAMA), id="adapter"),
        # The OpenAI client may send a base model's `/` as is or percent-encoded.
        pytest.param(f"/v1/models/{LLAMA}", model(LLAMA), id="base-with-slash"),
        pytest.param("/v1/models/Qwen%2FQwen3-0.6B?x=1", model(QWEN), id="percent-encoded"),
    ],
)
def test_retrieve_answers_one_model(path: str, expected: dict[str, Any]) -> None:
    models, _ = endpoint()
    assert answered(get(models, path)) == expected


def test_retrieve_of_an_unknown_model_is_openais_404() -> None:
    models, _ = endpoint()
    assert answered(get(models, "/v1/models/gpt-4"), status=404) == {
        "error": {
            "message": "The model `gpt-4` does not exist",
            "type": "invalid_request_error",
            "param": "model",
            "code": "model_not_found",
        }
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("POST", "/v1/models", id="post"),
        pytest.param("HEAD", "/v1/models", id="head"),
        pytest.param("DELETE", "/v1/models/sql-lora", id="delete"),
        pytest.param("GET", "/v1/models/", id="empty-id"),
        pytest.param("GET", "/v1/modelsx", id="other-path"),
        pytest.param("GET", "/v2/models", id="other-version"),
        pytest.param("GET", "/health", id="health"),
    ],
)
def test_other_requests_pass_through(method: str, path: str) -> None:
    models, _ = endpoint()
    assert get(models, path, method) is None


def test_an_empty_index_lets_models_requests_pass_through() -> None:
    """Knowing no model, the BBR leaves the request to the gateway's routes, as upstream."""
    models = ModelsEndpoint(AdapterIndex())
    assert get(models, "/v1/models") is None
    assert get(models, "/v1/models/x") is None


def test_the_answers_follow_the_index() -> None:
    models, index = endpoint()
    first = get(models, "/v1/models")
    assert get(models, "/v1/models") is first  # encoded once per snapshot
    index.reconcile("default/llama", None)
    assert answered(get(models, "/v1/models"))["data"] == [model(QWEN)]
    assert answered(get(models, "/v1/models/sql-lora"), status=404)
    index.reconcile("default/qwen", None)
    assert get(models, "/v1/models") is None


def test_a_name_both_adapter_and_base_is_listed_once_as_an_adapter() -> None:
    index = AdapterIndex(clock=lambda: LEARNED)
    index.reconcile("a", {"baseModel": LLAMA, "adapters": f"[{QWEN}]"})
    index.reconcile("b", {"baseModel": QWEN})
    ids = [
        (m["id"], m["parent"]) for m in answered(get(ModelsEndpoint(index), "/v1/models"))["data"]
    ]
    assert ids == [(LLAMA, None), (QWEN, LLAMA)]
