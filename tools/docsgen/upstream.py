"""The differences from upstream GIE as one table, from `upstream_differences.yaml`.

The YAML is the one place a difference is written down; each entry may name the test that shows
igw's behaviour, and rendering fails when that test no longer exists, so the table cannot keep
claiming what the code stopped doing unnoticed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tools.docsgen._markdown import GENERATED_NOTE, code, table

__all__ = ["DATA", "PAGE", "upstream_page"]

PAGE = "reference/upstream-differences.md"
DATA = Path(__file__).with_name("upstream_differences.yaml")
ROOT = Path(__file__).resolve().parents[2]


def _evidence(entry: dict[str, Any]) -> str:
    test = entry.get("test")
    if not test:
        return ""
    path, _, function = str(test).partition("::")
    source = ROOT / path
    if not source.is_file() or not re.search(
        rf"^(async )?def {re.escape(function)}\(", source.read_text(encoding="utf-8"), re.M
    ):
        raise LookupError(f"{DATA.name}: {entry['area']!r} names a test that is gone: {test}")
    return code(test)


def upstream_page() -> str:
    entries = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    rows = [(e["service"], e["area"], e["upstream"], e["igw"], _evidence(e)) for e in entries]
    parts = [
        GENERATED_NOTE,
        "# Differences from upstream",
        (
            "igw is a drop-in for upstream GIE v1.x: the same wire protocol, flags, configuration, "
            "CRDs and metric names. Where it differs, it is on purpose: most rows fix one of "
            "upstream's known quirks. The [migration guide](../guides/migrating-from-upstream.md) "
            "says what to do about each when you switch. Rows with a test name the test that shows "
            "igw's behaviour."
        ),
        table(("Service", "Where", "Upstream", "igw", "Shown by"), rows),
    ]
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"
