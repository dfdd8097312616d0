"""Where the BBR's adapter -> base-model mapping comes from: cluster ConfigMaps or a local file."""

from igw.bbr.sources.configmap import LABEL_SELECTOR, ConfigMapSource
from igw.bbr.sources.file import AdapterFileError, AdapterFileSource, parse_adapter_file

__all__ = [
    "LABEL_SELECTOR",
    "AdapterFileError",
    "AdapterFileSource",
    "ConfigMapSource",
    "parse_adapter_file",
]
