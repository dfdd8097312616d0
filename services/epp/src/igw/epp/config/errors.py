"""`ConfigError`: an EndpointPickerConfig that cannot be loaded, naming the offending field."""

from __future__ import annotations

import re

import msgspec

__all__ = ["ConfigError", "from_validation_error"]

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]*)`$")


class ConfigError(ValueError):
    """`path` is the field in the document (`schedulingProfiles[0].plugins[1].weigth`), or ""."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def join(base: str, sub: str) -> str:
    """`plugins[0]` + `.weight` / `[1]` -> one path, tolerating an empty side."""
    if not base:
        return sub.lstrip(".")
    if not sub or sub.startswith(("[", ".")):
        return base + sub
    return f"{base}.{sub}"


def from_validation_error(error: msgspec.ValidationError, base: str = "") -> ConfigError:
    """Translates msgspec's `... - at `$.a[0].b`` into a `ConfigError` with the field path."""
    match = _AT.match(str(error))
    text = match["msg"] if match else str(error)
    path = join(base, match["path"] or "") if match else base
    if unknown := _UNKNOWN.match(text):
        return ConfigError(join(path, unknown["field"]), "unknown field")
    if missing := _MISSING.match(text):
        return ConfigError(join(path, missing["field"]), "missing required field")
    return ConfigError(path, text[:1].lower() + text[1:])
