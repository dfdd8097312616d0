"""The OpenAI models endpoint the BBR answers itself: `GET /v1/models` and `GET /v1/models/{id}`.

igw goes beyond upstream here. Upstream's BBR passes every request without a body through, so a
client's `GET /v1/models` reaches whatever the gateway's routes send it to (usually nothing: a
404, as no route matches a request without the model headers). igw's BBR knows which models the
gateway serves, so it answers with them: an Envoy `ImmediateResponse`, 200, `application/json`.
`--serve-models-endpoint=false` turns this off and restores upstream's pass-through exactly.

What is listed: every name the `AdapterIndex` knows (the `--adapters-file` entries, and the
bbr-managed ConfigMaps, watched as before only when a `base-model-to-header` plugin runs), base
models first, then adapters, each sorted by code point, in OpenAI's list shape with vLLM's two
extra fields:

    {"object": "list", "data": [{"id": "meta-llama/Llama-3.1-8B-Instruct", "object": "model",
      "created": 1764900000, "owned_by": "igw", "root": "meta-llama/...", "parent": null}, ...]}

* `created`: when this BBR process first learned the name (`AdapterSnapshot.learned`), so an
  adapter added later is newer; replicas may differ by the seconds between their starts.
* `root`: the name itself (vLLM puts an adapter's weights path here, which the BBR does not know).
* `parent`: an adapter's base model; null for a base model.

`GET /v1/models/{id}` (OpenAI's retrieve; `id` percent-decoded, and it may contain `/`) answers
that one model, or 404 in OpenAI's error shape (`code: model_not_found`).

Which requests: GET without a body on exactly these paths; the query string is ignored. HEAD,
POST and every other method pass through as before, and so does everything while the index knows
no model at all: with nothing to list, whatever the gateway's routes did stays (for example a
single backend's own `/v1/models` behind a default route).

Cost: the check is a method and path comparison, made only for requests without a body. The
answers for a snapshot are encoded once and reused until the index publishes a new snapshot
(snapshots are immutable, so identity says "unchanged"). Everything runs on the event loop.

Metrics: these answers are not counted in `bbr_success` (upstream's "body processed" counter);
Envoy's own statistics count them, and a traced stream gets `bbr.answer.status` on its span.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from igw.bbr.adapters import AdapterIndex, AdapterSnapshot
from igw.common.extproc import ImmediateAnswer

__all__ = ["LIST_PATH", "OWNED_BY", "ModelsEndpoint"]

LIST_PATH = "/v1/models"
OWNED_BY = "igw"
_ITEM_PREFIX = LIST_PATH + "/"
_JSON = (("content-type", "application/json"),)


@dataclass(frozen=True, slots=True)
class _Catalog:
    """The encoded answers for one `AdapterSnapshot`."""

    snapshot: AdapterSnapshot
    listing: ImmediateAnswer | None
    """The list answer; None when the snapshot knows no model (the request passes through)."""
    models: Mapping[str, ImmediateAnswer]


class ModelsEndpoint:
    """Answers the OpenAI models requests from an `AdapterIndex`; see the module docstring."""

    def __init__(self, adapters: AdapterIndex) -> None:
        self._adapters = adapters
        self._catalog = _catalog(adapters.snapshot())

    def answer(self, headers: Mapping[str, str]) -> ImmediateAnswer | None:
        """The answer to a request without a body, or None to let it pass through."""
        if headers.get(":method") != "GET":
            return None
        path = headers.get(":path", "").partition("?")[0]
        if path == LIST_PATH:
            wanted = None
        elif path.startswith(_ITEM_PREFIX) and len(path) > len(_ITEM_PREFIX):
            wanted = urllib.parse.unquote(path[len(_ITEM_PREFIX) :])
        else:
            return None
        catalog = self._current()
        if catalog.listing is None:
            return None
        if wanted is None:
            return catalog.listing
        return catalog.models.get(wanted) or _not_found(wanted)

    def _current(self) -> _Catalog:
        snapshot = self._adapters.snapshot()
        if self._catalog.snapshot is not snapshot:
            self._catalog = _catalog(snapshot)
        return self._catalog


def _models(snapshot: AdapterSnapshot) -> list[dict[str, Any]]:
    # A name that is both resolves as an adapter (adapters.py), so it is listed once, as one.
    bases = sorted(name for name in snapshot.base_models if name not in snapshot.adapters)
    adapters = sorted(snapshot.adapters.items())
    return [_model(name, None, snapshot) for name in bases] + [
        _model(name, base, snapshot) for name, base in adapters
    ]


def _model(name: str, parent: str | None, snapshot: AdapterSnapshot) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": snapshot.learned.get(name, 0),
        "owned_by": OWNED_BY,
        "root": name,
        "parent": parent,
    }


def _catalog(snapshot: AdapterSnapshot) -> _Catalog:
    models = _models(snapshot)
    if not models:
        return _Catalog(snapshot, None, {})
    listing = _json(200, {"object": "list", "data": models})
    return _Catalog(snapshot, listing, {model["id"]: _json(200, model) for model in models})


def _not_found(model: str) -> ImmediateAnswer:
    error = {
        "message": f"The model `{model}` does not exist",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    return _json(404, {"error": error})


def _json(status: int, value: object) -> ImmediateAnswer:
    return ImmediateAnswer(status, msgspec.json.encode(value).decode(), _JSON)
