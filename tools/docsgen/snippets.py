"""Fenced code blocks of the docs, with the marks that say how the tests check them.

A block's info string is its language and, optionally, `title="..."`. The titles in `MARKS`
say a block cannot run here (it needs a cluster, a running local gateway, or runs for long):
such blocks are only syntax-checked. The convention is documented in docs/contributing.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MARKS", "Snippet", "snippets"]

MARKS = frozenset({"needs a cluster", "needs the local gateway", "long-running"})

_FENCE = re.compile(
    r"^(?P<fence>`{3,})(?P<info>[^`\n]*)\n(?P<body>.*?)^(?P=fence)\s*$", re.M | re.S
)
_TITLE = re.compile(r'title="(?P<title>[^"]*)"')


@dataclass(frozen=True, slots=True)
class Snippet:
    path: Path
    line: int
    language: str
    title: str
    body: str

    @property
    def runs(self) -> bool:
        """False for a block marked as needing a cluster, a gateway or a long time."""
        return self.title not in MARKS

    @property
    def id(self) -> str:
        return f"{self.path.as_posix()}:{self.line}"


def snippets(path: Path, root: Path) -> Iterator[Snippet]:
    text = path.read_text(encoding="utf-8")
    for match in _FENCE.finditer(text):
        info = match.group("info").strip()
        language = info.split(" ", 1)[0] if info else ""
        title = _TITLE.search(info)
        yield Snippet(
            path.relative_to(root),
            text.count("\n", 0, match.start()) + 1,
            language,
            title.group("title") if title else "",
            match.group("body"),
        )
