"""No test picks a "free" port and binds it later (issue 13 item 6).

A port found free and released can be taken by anyone before its server binds it; on a loaded
machine the kernel hands freed ports out again within milliseconds. Tests bind port 0 and read the
port back, or hold the port (`igw.common.testing.ports`). `free_port`, which does the forbidden
thing, stays for benchmarks only, and this checks that no test, fixture or conftest uses it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = "free_port"


def _test_files() -> Iterator[Path]:
    """Every Python file of a `tests` folder or a conftest, in every tree."""
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0].startswith(".") or ".venv" in parts:
            continue
        if "tests" in parts or path.name == "conftest.py":
            yield path


def _uses(source: str) -> list[int]:
    """The lines that import or call `free_port` (by name or as an attribute)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            lines += [node.lineno for alias in node.names if alias.name == FORBIDDEN]
        elif FORBIDDEN in (getattr(node, "attr", None), getattr(node, "id", None)):
            lines.append(getattr(node, "lineno", 0))  # `x.free_port` or a bare `free_port`
    return lines


def test_no_test_picks_a_free_port_to_bind_later() -> None:
    files = list(_test_files())
    assert len(files) > 100, "the scan found too few test files to be looking in the right place"
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in files
        for line in _uses(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "bind port 0 or hold the port instead (igw.common.testing.ports)"


@pytest.mark.parametrize(
    "source",
    [
        "from igw.common.testing import free_port\n",
        "import igw.common.testing.ports as p\nport = p.free_port()\n",
        "def f(free_port):\n    return free_port()\n",
    ],
)
def test_the_scan_finds_each_way_of_using_it(source: str) -> None:
    assert _uses(source)
