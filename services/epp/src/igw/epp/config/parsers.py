"""Parser plugin types as the config loader knows them: by name only.

The request path owns the parsers (`openai-parser`, `passthrough-parser`); until it registers
real classes, the caller injects the names it supports and the loader records the chosen parser
(`ParserSpec`) with its raw parameters for the request path to build.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from igw.epp.scheduling.contracts import Plugin
from igw.epp.scheduling.handle import PluginHandle

__all__ = ["DEFAULT_PARSER", "KNOWN_PARSERS", "ParserSpec", "ParserStub", "parser_types"]

DEFAULT_PARSER = "openai-parser"
KNOWN_PARSERS = ("openai-parser", "passthrough-parser")


@dataclass(frozen=True, slots=True)
class ParserSpec:
    name: str
    type: str
    params: Mapping[str, Any] = field(default_factory=dict)


class ParserStub:
    """A parser type known by name; `from_config` keeps its parameters unvalidated."""

    type_name: ClassVar[str] = ""
    config_kind: ClassVar[str] = "parser"

    def __init__(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.params: Mapping[str, Any] = dict(params or {})

    @classmethod
    def from_config(
        cls,
        name: str,
        params: Mapping[str, Any],
        handle: PluginHandle,  # noqa: ARG003 - protocol
    ) -> Self:
        return cls(name, params)

    def spec(self) -> ParserSpec:
        return ParserSpec(self.name, self.type_name, self.params)


def parser_types(names: Iterable[str]) -> list[type[Plugin]]:
    """One stub class per parser type name."""
    return [
        type(f"ParserStub[{name}]", (ParserStub,), {"type_name": name, "__slots__": ()})
        for name in names
    ]
