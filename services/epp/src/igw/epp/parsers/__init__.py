"""Request parsers (`openai-parser`, `passthrough-parser`) and response usage extraction.

Each parser is a plugin of the framework's `parser` kind (`igw.epp.framework.parsing` states the
contract), registered in the EPP's one table (`igw.epp.config.builtin`); the loaded configuration
holds the instance the request path uses.
"""

from igw.epp.parsers._usage import OpenAIUsageReader, usage_from_mapping
from igw.epp.parsers.openai_parser import OpenAIParser
from igw.epp.parsers.passthrough_parser import PassthroughParser

__all__ = ["OpenAIParser", "OpenAIUsageReader", "PassthroughParser", "usage_from_mapping"]
