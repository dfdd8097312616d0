"""The kind suite's LoRA-adapter checks: routing on the BBR's base-model header, and the model list.

`adapters.yaml` is a bbr-managed ConfigMap that declares the adapter `ADAPTER` (which every sim
preloads, sim.yaml's `--lora-modules`) on the base model `MODEL`; `gateway.yaml` has a rule on
`X-Gateway-Base-Model-Name: MODEL` that tags its responses `x-igw-e2e-route: base-model`. A
request naming the adapter answered 200 by the adapter through that rule shows the BBR resolved
the adapter to its base model. The BBR learns the ConfigMap through a watch, so the first request
is retried until a deadline. A model nobody declared gets an empty base-model header and falls to
the catch-all rule, where the model server refuses it (404).

`GET /v1/models` reaches the BBR through the catch-all rule; the BBR answers it itself from its
adapter index (`igw.bbr.models`), in OpenAI's list shape. The model servers behind the pool
answer the same shape, so the check also asks for the BBR's `owned_by`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from e2e.kind.client import completion, describe, request, wait_until_answering
from e2e.kind.tools import ADAPTER, MODEL, ROUTE_HEADER, SuiteError, log

ADAPTERS_CONFIGMAP = "food-review-adapters"  # adapters.yaml
ADAPTER_TIMEOUT_S = 120.0
# What the BBR's `GET /v1/models` says in `owned_by` (igw.bbr.models.OWNED_BY); vLLM and igw-sim
# say "vllm", so a list that went through to a model server is told apart.
BBR_OWNED_BY = "igw"


@dataclass(frozen=True, slots=True)
class ModelCard:
    """One entry of an OpenAI model list (`parent`: vLLM's base model of an adapter)."""

    id: str
    parent: str | None
    owned_by: str


def _card(item: object) -> ModelCard:
    if not isinstance(item, dict):
        raise SuiteError(f"GET /v1/models: an entry is not an object: {item!r}")
    shaped = (
        item.get("object") == "model"
        and isinstance(item.get("id"), str)
        and isinstance(item.get("created"), int)
        and isinstance(item.get("owned_by"), str)
        and isinstance(item.get("parent"), str | None)
    )
    if not shaped:
        raise SuiteError(
            "GET /v1/models: an entry is not a model card (object 'model', string id and "
            f"owned_by, integer created, string or null parent): {item!r}"
        )
    return ModelCard(item["id"], item.get("parent"), item["owned_by"])


def parse_model_list(body: bytes) -> list[ModelCard]:
    """The cards of OpenAI's `{"object": "list", "data": [...]}`; raises on any other shape."""
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise SuiteError(f"GET /v1/models: not JSON: {body[:200]!r}") from exc
    if not (
        isinstance(value, dict)
        and value.get("object") == "list"
        and isinstance(value.get("data"), list)
    ):
        raise SuiteError(f"GET /v1/models: not OpenAI's list shape: {body[:300]!r}")
    return [_card(item) for item in value["data"]]


def expect_models(cards: Sequence[ModelCard]) -> None:
    """The list names `MODEL` (no parent) and `ADAPTER` (parent `MODEL`), as the BBR lists them."""
    by_id = {card.id: card for card in cards}
    missing = [name for name in (MODEL, ADAPTER) if name not in by_id]
    if missing:
        raise SuiteError(f"GET /v1/models lists {sorted(by_id)}, lacks {missing}")
    owners = sorted({card.owned_by for card in cards} - {BBR_OWNED_BY})
    if owners:
        raise SuiteError(
            f"GET /v1/models was answered by a model server (owned_by {owners}), not by the BBR "
            "(its cards say owned_by 'igw'): is bbr.modelsEndpoint (--serve-models-endpoint) on?"
        )
    if by_id[MODEL].parent is not None:
        raise SuiteError(f"GET /v1/models: base model {MODEL} has parent {by_id[MODEL].parent!r}")
    if by_id[ADAPTER].parent != MODEL:
        raise SuiteError(
            f"GET /v1/models: adapter {ADAPTER} has parent {by_id[ADAPTER].parent!r}, "
            f"expected {MODEL!r}"
        )


def check_adapter_routing(base: str) -> None:
    """A request naming the adapter is answered by it through the base model's rule."""
    try:
        answer = wait_until_answering(
            f"{base}/v1/completions", completion(ADAPTER), timeout_s=ADAPTER_TIMEOUT_S
        )
    except SuiteError as exc:
        raise SuiteError(
            f"adapter routing: {exc} (the BBR sets X-Gateway-Base-Model-Name: {MODEL} for "
            f"{ADAPTER} once it has read the ConfigMap {ADAPTERS_CONFIGMAP}; gateway.yaml routes "
            "that header to the pool)"
        ) from exc
    model = json.loads(answer.body).get("model")
    rule = answer.headers.get(ROUTE_HEADER)
    if model != ADAPTER or rule != "base-model":
        raise SuiteError(
            f"adapter routing: answered by model {model!r} through rule {rule!r}, expected "
            f"{ADAPTER!r} through 'base-model'"
        )
    port = answer.headers.get("x-inference-port")
    log(f"ok: adapter {ADAPTER} routed on its base model {MODEL} (port {port})")
    unknown = request(f"{base}/v1/completions", completion("no-such-adapter"))
    rule = unknown.headers.get(ROUTE_HEADER)
    if unknown.status != 404 or rule != "catch-all":
        raise SuiteError(
            f"a model neither served nor declared answered {describe(unknown)} through rule "
            f"{rule!r}, expected 404 from a model server through 'catch-all' (the BBR's "
            "base-model header is empty for it)"
        )
    log("ok: an undeclared model falls to the catch-all rule and is refused (404)")


def check_models_list(base: str) -> None:
    """`GET /v1/models` through the gateway lists the base model and the adapter."""
    answer = request(f"{base}/v1/models")
    if answer.status != 200:
        raise SuiteError(f"GET /v1/models through the gateway: {describe(answer)}, expected 200")
    cards = parse_model_list(answer.body)
    expect_models(cards)
    log(f"ok: GET /v1/models lists {[card.id for card in cards]} ({ADAPTER} on {MODEL})")
