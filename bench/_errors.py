"""The benchmarks' one exception tree.

    RuntimeError
    └── BenchmarkError   the run cannot be trusted: an unexpected HTTP status, an incomplete
        │                answer, requests a processor did not see or count, a check that failed
        └── StartError   a process died during start-up (its port, free a moment before, was
                         taken); the stacks retry with fresh ports

Both are `RuntimeError`s, so a benchmark that reports any failed step with its process logs
catches them together with the process helpers' own errors.
"""

from __future__ import annotations

__all__ = ["BenchmarkError", "StartError"]


class BenchmarkError(RuntimeError):
    """The run cannot be trusted; the message says which check failed and where."""


class StartError(BenchmarkError):
    """A process died during start-up, e.g. its port, free a moment before, was taken."""
