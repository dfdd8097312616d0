"""EndpointPickerConfig: strict loading with upstream's defaults and phases (§3.3).

`load_config(text)` / `load_config_file(path)` return an `EppConfig` (the built `Scheduler`, the
`RequestControl` hooks, the saturation detector, the parser, and the resolved data-layer and
flow-control sections); `load_config()` with no text is upstream's built-in default. Errors are
`ConfigError`s naming the field path. `builtin_registry()` is the EPP's plugin table; every
plugin, of any kind, is built through it.
"""

from igw.epp.config.builtin import (
    BUILTIN_TYPES,
    DEFAULT_PRODUCERS,
    UNSUPPORTED_TYPES,
    builtin_registry,
)
from igw.epp.config.errors import ConfigError
from igw.epp.config.loader import DEFAULT_CONFIG, EppConfig, load_config, load_config_file
from igw.epp.config.profiles import PROFILES

__all__ = [
    "BUILTIN_TYPES",
    "DEFAULT_CONFIG",
    "DEFAULT_PRODUCERS",
    "PROFILES",
    "UNSUPPORTED_TYPES",
    "ConfigError",
    "EppConfig",
    "builtin_registry",
    "load_config",
    "load_config_file",
]
