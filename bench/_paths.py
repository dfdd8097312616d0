"""The repository root, and paths and commands as results record them: relative to it.

A results file says what made it (`python -m bench.bbr_cpu --output bench/results/bbr_cpu.md`)
without naming the machine it ran on: every path inside the repository is written relative to
its root. Paths outside it (a temporary directory) are written absolute.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

__all__ = ["REPO", "RESULTS", "command_line", "repo_relative"]

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def repo_relative(path: Path | str) -> str:
    """`path` relative to the repository root if it lies inside it, else absolute."""
    # absolute(), not resolve(): `.venv/bin/python` is a symlink out of the repository.
    absolute = Path(path).absolute()
    return str(absolute.relative_to(REPO)) if absolute.is_relative_to(REPO) else str(absolute)


def _relative_arg(arg: str) -> str:
    if arg.startswith("-") and "=" in arg:
        option, _, value = arg.partition("=")
        return f"{option}={_relative_arg(value)}"
    return repo_relative(arg) if arg.startswith("/") else arg


def command_line(argv: Sequence[str]) -> str:
    """`argv` as a shell command, each absolute path inside the repository made relative."""
    return shlex.join(_relative_arg(arg) for arg in argv)
