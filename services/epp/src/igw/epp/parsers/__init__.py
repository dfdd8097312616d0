"""Request parsers (`openai-parser`, `passthrough-parser`) and response usage extraction.

`build_parser(spec)` turns the config's `ParserSpec` into the parser the request path uses.
"""

from collections.abc import Mapping
from typing import Final

from igw.epp.config.parsers import ParserSpec
from igw.epp.parsers._usage import OpenAIUsageReader, usage_from_mapping
from igw.epp.parsers.contracts import ParsedRequest, Parser, Usage, UsageReader
from igw.epp.parsers.openai_parser import OpenAIParser
from igw.epp.parsers.passthrough_parser import PassthroughParser

__all__ = [
    "PARSER_TYPES",
    "OpenAIParser",
    "OpenAIUsageReader",
    "ParsedRequest",
    "Parser",
    "PassthroughParser",
    "Usage",
    "UsageReader",
    "build_parser",
    "usage_from_mapping",
]

PARSER_TYPES: Final[Mapping[str, type[OpenAIParser] | type[PassthroughParser]]] = {
    OpenAIParser.type_name: OpenAIParser,
    PassthroughParser.type_name: PassthroughParser,
}


def build_parser(spec: ParserSpec) -> Parser:
    """The parser a configuration names; raises `ValueError` for parameters (none are known)."""
    cls = PARSER_TYPES.get(spec.type)
    if cls is None:
        raise ValueError(f"unknown parser type {spec.type!r} (known: {', '.join(PARSER_TYPES)})")
    if spec.params:
        raise ValueError(f"parser {spec.name!r} ({spec.type}) takes no parameters")
    return cls(spec.name)
