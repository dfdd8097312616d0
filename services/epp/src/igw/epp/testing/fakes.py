"""`FakePlugin`: what a test double needs to be a plugin of any kind, so tests pass their fakes
where the framework expects a `Filter`, a `DataProducer` or a `ResponseComplete` without a
`type: ignore`: a type name, an instance name, the one constructor, and no attributes produced
or consumed. A fake adds only the kind's method."""

from __future__ import annotations

from typing import Any, ClassVar

from igw.epp.framework import AttributeKey, ParameterlessPlugin

__all__ = ["FakePlugin"]


class FakePlugin(ParameterlessPlugin):
    type_name: ClassVar[str] = "fake-plugin"
    produces: ClassVar[tuple[AttributeKey[Any], ...]] = ()
    consumes: ClassVar[tuple[AttributeKey[Any], ...]] = ()
