"""`base-model-to-header`: sets `X-Gateway-Base-Model-Name` to the requested model's base model.

The mapping comes from the adapter index (ConfigMaps labelled
`inference.networking.k8s.io/bbr-managed: "true"`, or a local file): an adapter maps to its base
model, a base model to itself, and an unknown name to the empty string, as upstream does, so a
route matching on the base model never matches by accident. A body without a string `model` sets
nothing. No parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from igw.bbr.plugins._base import AdapterLookup, Mutations, PluginHandle
from igw.common.openai import raw_as_text

__all__ = ["BASE_MODEL_HEADER", "BaseModelToHeader"]

BASE_MODEL_HEADER = "x-gateway-base-model-name"


class BaseModelToHeader:
    type_name: ClassVar[str] = "base-model-to-header"
    fields = ("model",)

    def __init__(self, name: str, adapters: AdapterLookup) -> None:
        self.name = name
        self._adapters = adapters

    @classmethod
    def from_config(
        cls, name: str, params: Mapping[str, Any], handle: PluginHandle
    ) -> BaseModelToHeader:
        if params:
            raise ValueError(f"plugin {name!r} ({cls.type_name}) takes no parameters")
        return cls(name, handle.adapters)

    def process_request(
        self,
        fields: Mapping[str, msgspec.Raw],
        headers: Mapping[str, str],  # noqa: ARG002 - protocol
        out: Mutations,
    ) -> None:
        raw = fields.get("model")
        if raw is None:
            return
        model = raw_as_text(raw)
        out.set_header(BASE_MODEL_HEADER, self._adapters.base_model_of(model) or "")
