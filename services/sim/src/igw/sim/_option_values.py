"""Parsers of option values, shared by the flags and the YAML file (`igw.sim.config`).

Each takes what argparse gives (text) or what YAML gives (numbers, lists, mappings) and returns
the option's value, raising `ValueError` (or `TypeError` for a value of the wrong kind) with a
message that `igw.sim.config` prefixes with the option's name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from igw.sim.failures import FAILURE_TYPES

__all__ = [
    "LoraModule",
    "boolean",
    "duration",
    "failure_types",
    "integer",
    "lora_modules",
    "number",
    "text",
]


@dataclass(frozen=True, slots=True)
class LoraModule:
    name: str
    path: str


def integer(minimum: int, maximum: int | None = None) -> Callable[[object], int]:
    def parse(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"expected an integer, got {value!r}")
        number = int(value)
        if number < minimum or (maximum is not None and number > maximum):
            upper = f"-{maximum}" if maximum is not None else " or more"
            raise ValueError(f"expected {minimum}{upper}, got {number}")
        return number

    return parse


def number(minimum: float, maximum: float | None = None) -> Callable[[object], float]:
    def parse(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(f"expected a number, got {value!r}")
        number = float(value)
        if not minimum <= number <= (maximum if maximum is not None else float("inf")):
            raise ValueError(f"expected a number from {minimum}, got {number}")
        return number

    return parse


_DURATION: Final = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m)?\s*$")


def duration(value: object) -> float:
    """Seconds, from a number or a Go-style `500ms` / `10s` / `1m` (llm-d's `startup-duration`)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number(0.0)(value)
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(f"expected seconds or a duration like 10s or 500ms, got {value!r}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
    return float(match.group(1)) * scale


def text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    if not value:
        raise ValueError("expected a non-empty string")
    return value


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).lower()
    if lowered in ("1", "t", "true", "yes"):
        return True
    if lowered in ("0", "f", "false", "no"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _items(value: object) -> list[object]:
    """A YAML list, or flag values, each of which may itself be comma-separated."""
    raw = value if isinstance(value, list | tuple) else [value]
    items: list[object] = []
    for item in raw:
        is_json = isinstance(item, str) and item.lstrip().startswith("{")
        items.extend(item.split(",") if isinstance(item, str) and not is_json else [item])
    return [item.strip() if isinstance(item, str) else item for item in items if item != ""]


def failure_types(value: object) -> tuple[str, ...]:
    names = tuple(text(item) for item in _items(value))
    unknown = sorted(set(names) - set(FAILURE_TYPES))
    if unknown:
        raise ValueError(f"unknown failure types {unknown}; known: {', '.join(FAILURE_TYPES)}")
    return names


def lora_modules(value: object) -> tuple[LoraModule, ...]:
    """vLLM's `name=path`, or llm-d's / vLLM's JSON `{"name", "path", "base_model_name"}`."""
    modules: list[LoraModule] = []
    for item in _items(value):
        spec = json.loads(item) if isinstance(item, str) and item.startswith("{") else item
        if isinstance(spec, str) and "=" in spec:
            name, _, path = spec.partition("=")
            modules.append(LoraModule(text(name.strip()), text(path.strip())))
        elif isinstance(spec, Mapping) and "name" in spec and "path" in spec:
            modules.append(LoraModule(text(spec["name"]), text(spec["path"])))
        else:
            raise ValueError(f"expected name=path or {{'name', 'path'}}, got {item!r}")
    return tuple(modules)
