"""A pytest plugin collecting the fault suite's summaries into one section at the end of the run.

A fault test asks for the `fault_report` fixture and calls it with its summary line (for example
`LoadTally.summary(...)`: requests sent, succeeded, failed); after the run, pytest prints every
line under "fault suite", so `make test`'s output shows each fault's figures without `-s`.
Loaded by the repository's root `conftest.py`.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

__all__ = ["fault_report", "pytest_terminal_summary"]

_LINES = pytest.StashKey[list[str]]()


@pytest.fixture
def fault_report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Call with one summary line; it is printed in the run's "fault suite" section."""
    lines = request.config.stash.setdefault(_LINES, [])

    def report(line: str) -> None:
        lines.append(f"{request.node.nodeid}: {line}")

    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(_LINES, [])
    if lines:
        terminalreporter.write_sep("=", "fault suite")
        for line in lines:
            terminalreporter.write_line(line)
