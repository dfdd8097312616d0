"""`passthrough-parser`: the body is opaque (any bytes, JSON or not) and forwarded untouched.

No model is read (the model labels of metrics are empty unless `x-gateway-model-name-rewrite`
names one), no usage is extracted and the prefix cache has nothing to hash; priority still comes
from the objective header. A model rewrite cannot be applied to an opaque body and is ignored.
"""

from __future__ import annotations

from typing import ClassVar

from igw.epp.framework.params import ParameterlessPlugin
from igw.epp.framework.parsing import ParsedRequest, Usage

__all__ = ["PassthroughParser"]

_PARSED = ParsedRequest(model="")


class _NoUsage:
    __slots__ = ()
    usage: Usage | None = None

    def feed(
        self,
        chunk: bytes,  # noqa: ARG002 - protocol
        *,
        end_of_stream: bool,  # noqa: ARG002 - protocol
        streaming: bool,  # noqa: ARG002 - protocol
    ) -> Usage | None:
        """Nothing is read."""
        return None


_NO_USAGE = _NoUsage()


class PassthroughParser(ParameterlessPlugin):
    type_name: ClassVar[str] = "passthrough-parser"
    reads_models: ClassVar[bool] = False

    def parse(self, path: str, body: bytes) -> ParsedRequest:  # noqa: ARG002 - protocol
        return _PARSED

    def rewrite_model(
        self,
        body: bytes,
        parsed: ParsedRequest,  # noqa: ARG002 - protocol
        target: str,  # noqa: ARG002 - protocol
    ) -> bytes:
        return body

    def usage_reader(self) -> _NoUsage:
        return _NO_USAGE
