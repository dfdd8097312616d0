"""`body-field-to-header`: copies one top-level body field into a request header.

Parameters (both required, as upstream): `fieldName`, `headerName`. Strings are copied as they
are; any other JSON value as its compact JSON text. A missing field (or `null`) and an empty one
(`""`, `[]`, `{}`) set nothing, and are counted in `bbr_body_field_not_found_total` and
`bbr_body_field_empty_total`. A header the client sent under the same name is overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import msgspec

from igw.bbr.metrics import BbrMetrics
from igw.bbr.plugins._base import Mutations, PluginHandle
from igw.common.openai import is_empty, raw_as_text

__all__ = ["BodyFieldToHeader", "BodyFieldToHeaderParams"]


class BodyFieldToHeaderParams(
    msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True, rename="camel"
):
    """Upstream's `fieldName` and `headerName`."""

    field_name: str
    header_name: str


class BodyFieldToHeader:
    type_name: ClassVar[str] = "body-field-to-header"

    def __init__(self, name: str, field_name: str, header_name: str, metrics: BbrMetrics) -> None:
        if not field_name or not header_name:
            raise ValueError(f"plugin {name!r}: fieldName and headerName must not be empty")
        self.name = name
        self.field_name = field_name
        self.header_name = header_name.lower()
        self.fields = (field_name,)
        self._not_found = metrics.body_field_not_found.labels(field_name)
        self._empty = metrics.body_field_empty.labels(field_name)

    @classmethod
    def from_config(
        cls, name: str, params: Mapping[str, Any], handle: PluginHandle
    ) -> BodyFieldToHeader:
        p = msgspec.convert(params, BodyFieldToHeaderParams)
        return cls(name, p.field_name, p.header_name, handle.metrics)

    def process_request(
        self,
        fields: Mapping[str, msgspec.Raw],
        headers: Mapping[str, str],  # noqa: ARG002 - protocol
        out: Mutations,
    ) -> None:
        raw = fields.get(self.field_name)
        if raw is None:
            self._not_found.inc()
            return
        if is_empty(raw):
            self._empty.inc()
            return
        out.set_header(self.header_name, raw_as_text(raw))
