"""`request-attribute-reporter`: values computed from a response's token usage, handed to Envoy as
dynamic metadata (e.g. a request's cost for rate limiting or billing).

Each entry of `attributes` names where the value goes (`key.namespace`, default `envoy.lb`, and
`key.name`), a CEL `expression` that computes it and an optional CEL `condition` that decides
whether to report at all. Both see one variable, `usage`, with upstream's fields:
`prompt_tokens`, `completion_tokens`, `total_tokens` and, when the model server reported cached
tokens, `prompt_token_details.cached_tokens` (also under OpenAI's `prompt_tokens_details`). As
upstream, which hands CEL a protobuf Struct, the numbers are doubles: write
`usage.completion_tokens * 2.0` or `int(usage.prompt_tokens) + 1`, not `... * 2`.

    attributes:
    - key: {name: x-gateway-inference-request-cost}
      expression: usage.prompt_tokens + usage.completion_tokens
      condition: usage.total_tokens > 0.0

A ResponseBody plugin: it works at the response's end, once usage is known, and the values ride
on the last body reply to Envoy. The result must be a number (an int or a double, truncated to a
whole number as upstream); zero is not reported (as upstream), nor is anything for a response
without usage. Expressions are compiled once, at configuration load: a syntax error or a
variable other than `usage` is a configuration error naming the field. At run time an error
(a missing field, a division by zero) or a result of the wrong type is logged and that attribute
skipped; the response itself is never failed. igw accepts several attributes; upstream exactly
one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Self

import msgspec
import structlog

# The compiled module itself, not the `cel` package: xds-protos and envoy-data-plane also ship a
# `cel/__init__.py` (for the cel.expr protos) and, depending on install order, theirs replaces
# the one that re-exports these names.
from cel import cel

from igw.epp.endpoints import Endpoint, InferenceRequest
from igw.epp.framework.handle import PluginHandle
from igw.epp.framework.params import Params, decode_params
from igw.epp.framework.response import Response

if TYPE_CHECKING:
    # Only named in annotations: the parsers package imports the scheduler's contracts.
    from igw.epp.framework.parsing import Usage

__all__ = [
    "AttributeKeyParams",
    "AttributeParams",
    "RequestAttributeReporter",
    "RequestAttributeReporterParams",
    "usage_variables",
]

_log = structlog.get_logger(__name__)
DEFAULT_NAMESPACE = "envoy.lb"
_VARIABLE = "usage"


class AttributeKeyParams(Params, frozen=True):
    name: str
    namespace: str = DEFAULT_NAMESPACE
    """An empty namespace also means `envoy.lb`, as upstream."""


class AttributeParams(Params, frozen=True):
    key: AttributeKeyParams
    expression: str
    condition: str = ""


class RequestAttributeReporterParams(Params, frozen=True):
    attributes: list[AttributeParams]


@dataclass(frozen=True, slots=True)
class _Attribute:
    namespace: str
    name: str
    expression: cel.Program
    condition: cel.Program | None


def usage_variables(usage: Usage) -> dict[str, Any]:
    """The `usage` CEL variable: upstream's JSON field names, numbers as doubles."""
    data: dict[str, Any] = {
        "prompt_tokens": float(usage.prompt_tokens),
        "completion_tokens": float(usage.completion_tokens),
        "total_tokens": float(usage.total_tokens),
    }
    if usage.cached_tokens is not None:
        details = {"cached_tokens": float(usage.cached_tokens)}
        data["prompt_token_details"] = details
        data["prompt_tokens_details"] = details
    return data


def _compile(source: str, field: str) -> cel.Program:
    """Raises `msgspec.ValidationError` at `field`, so the config error names it."""
    try:
        program = cel.compile(source)
    except ValueError as e:
        raise msgspec.ValidationError(f"invalid CEL: {e} - at `$.{field}`") from None
    unknown = sorted(set(program.variables()) - {_VARIABLE})
    if unknown:
        raise msgspec.ValidationError(
            f"unknown CEL variable {', '.join(unknown)} (only `usage` is defined) - at `$.{field}`"
        )
    return program


class RequestAttributeReporter:
    type_name: ClassVar[str] = "request-attribute-reporter"

    def __init__(self, name: str = type_name, attributes: Sequence[AttributeParams] = ()) -> None:
        if not attributes:
            raise msgspec.ValidationError("needs at least one entry - at `$.attributes`")
        self.name = name
        compiled: list[_Attribute] = []
        for i, attribute in enumerate(attributes):
            at = f"attributes[{i}]"
            if not attribute.key.name:
                raise msgspec.ValidationError(f"must not be empty - at `$.{at}.key.name`")
            if not attribute.expression.strip():
                raise msgspec.ValidationError(f"must not be empty - at `$.{at}.expression`")
            condition = attribute.condition.strip()
            compiled.append(
                _Attribute(
                    attribute.key.namespace or DEFAULT_NAMESPACE,
                    attribute.key.name,
                    _compile(attribute.expression, f"{at}.expression"),
                    _compile(condition, f"{at}.condition") if condition else None,
                )
            )
        self._attributes = tuple(compiled)

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: PluginHandle,  # noqa: ARG003 - protocol
    ) -> Self:
        return cls(name, decode_params(params, RequestAttributeReporterParams).attributes)

    def response_body(
        self,
        request: InferenceRequest,
        response: Response,
        endpoint: Endpoint | None,  # noqa: ARG002 - protocol
    ) -> None:
        if not response.end_of_stream or response.usage is None:
            return
        variables = {_VARIABLE: usage_variables(response.usage)}
        for attribute in self._attributes:
            value = self._evaluate(attribute, variables, request.request_id)
            if value:
                response.set_metadata(attribute.namespace, attribute.name, value)

    def _evaluate(
        self, attribute: _Attribute, variables: dict[str, Any], request_id: str
    ) -> int | None:
        """The whole-number value to report, or None (condition false, or logged failure)."""
        try:
            if attribute.condition is not None:
                wanted = attribute.condition.execute(variables)
                if wanted is not True:
                    if wanted is not False:
                        self._skip(attribute, request_id, f"condition gave {wanted!r}, not a bool")
                    return None
            value = attribute.expression.execute(variables)
        except Exception as e:  # any CEL evaluation error skips the attribute, never the response
            self._skip(attribute, request_id, f"{type(e).__name__}: {e}")
            return None
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            self._skip(attribute, request_id, f"expression gave {value!r}, not a number")
            return None
        return int(value)

    def _skip(self, attribute: _Attribute, request_id: str, reason: str) -> None:
        _log.warning(
            "request_attribute_skipped", plugin=self.name, attribute=attribute.name,
            request_id=request_id, reason=reason,
        )  # fmt: skip
