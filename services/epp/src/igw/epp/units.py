"""Kubernetes-style durations and quantities as EndpointPickerConfig writes them.

Durations follow Go's `time.ParseDuration` (`200ms`, `1m30s`, `1.5h`); a YAML number (not a string)
is seconds; a unitless string other than `0` is an error, as in Go.
Quantities follow Kubernetes `resource.Quantity` for the suffixes configs use (`1Gi`, `500M`,
`1e9`) and come out as whole bytes or counts.
"""

from __future__ import annotations

import math
import re

__all__ = ["parse_duration", "parse_quantity"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)([KMGTPE]i?|[km])?$")
_QUANTITY_SUFFIX = {
    None: 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
    "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "m": 1,  # milli: only meaningful for CPU; byte and request counts round it up below
}  # fmt: skip


def parse_duration(value: str | float) -> float:
    """Seconds in `value`; raises `ValueError` naming the text when it is not a duration."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        if body == "0":
            return 0.0
        parts = _DURATION_PART.findall(body)
        if not body or "".join(n + u for n, u in parts) != body:
            raise ValueError(f"invalid duration {value!r} (expected e.g. 200ms, 2s, 1m30s)")
        seconds = sign * sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError(f"invalid duration {value!r}: must be a finite, non-negative time")
    return seconds


def parse_quantity(value: str | int) -> int:
    """Whole units in `value` (`1Gi` -> 1073741824); raises `ValueError` on anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        amount = value
    else:
        match = _QUANTITY.match(str(value).strip())
        if match is None:
            raise ValueError(f"invalid quantity {value!r} (expected e.g. 1000, 1Gi, 500M)")
        number, suffix = match.groups()
        scaled = float(number) * _QUANTITY_SUFFIX[suffix]
        amount = math.ceil(scaled / 1000) if suffix == "m" else math.ceil(scaled)
    if amount < 0:
        raise ValueError(f"invalid quantity {value!r}: must not be negative")
    return amount
