"""Start a command that dies with its parent: `python -m igw.common.deathsig PPID CMD [ARGS...]`.

Launchers (the local gateway, test fixtures, benchmarks) want every child to get SIGTERM when the
launcher itself dies, even by SIGKILL: Linux's `PR_SET_PDEATHSIG`. Setting it with
`subprocess.Popen(preexec_fn=...)` runs Python code between `fork` and `exec` in a process that
holds gRPC's threads and fork handlers, and that crashed children now and then (gRPC's event
engine aborting with "epoll_wait error: Bad file descriptor"). This shim is exec'd instead: a fresh
interpreter sets the signal, checks that its parent is still the launcher (closing the race where
the launcher died before the signal was armed), and replaces itself with the command, which keeps
the setting across `exec`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Sequence

__all__ = ["main", "wrap"]

_PR_SET_PDEATHSIG = 1


def wrap(argv: Sequence[str]) -> list[str]:
    """`argv` run through this shim, so that it dies with the calling process."""
    if not sys.platform.startswith("linux"):
        return list(argv)
    return [sys.executable, "-m", "igw.common.deathsig", str(os.getpid()), *argv]


def main(argv: Sequence[str]) -> int:  # noqa: RET503 - exec replaces the process
    if len(argv) < 2:
        print("usage: python -m igw.common.deathsig PPID CMD [ARGS...]", file=sys.stderr)  # noqa: T201
        return 2
    parent, command = int(argv[0]), list(argv[1:])
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        return 1  # the launcher is already gone
    os.execvp(command[0], command)  # noqa: S606 - the launcher's command; never returns


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
