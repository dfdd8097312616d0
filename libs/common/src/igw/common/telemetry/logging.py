"""Structured logging for igw services: structlog rendered through one stdlib handler.

Our own events and those of libraries that log through stdlib `logging` (grpc, asyncio, the
Kubernetes client) reach the same root handler, whose formatter runs the structlog processor chain,
so every line has one shape: a JSON object per line in production, coloured `key=value` text for a
developer's terminal.

Verbosity follows upstream's logr V-levels and its `-v`/`--v` flag (default 2):

    -v     stdlib level   what is written
    0-1    WARNING        warnings and errors only (upstream's advice under high QPS)
    2-3    INFO           lifecycle events and one line per request
    >= 4   DEBUG          debug events as well

VERBOSE (3) and TRACE (5) are finer than any stdlib level, so code gates them itself:
`if enabled(VERBOSE): log.info(...)` costs one integer comparison when the line is off. The
verbosity is stored once, by `configure_logging`; before that it is `DEFAULT`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, TextIO

import orjson
import structlog

__all__ = [
    "DEBUG",
    "DEFAULT",
    "TRACE",
    "VERBOSE",
    "configure_logging",
    "enabled",
    "get_logger",
    "stdlib_level",
]

DEFAULT: Final = 2
VERBOSE: Final = 3
DEBUG: Final = 4
TRACE: Final = 5

# Marks the handler we install so reconfiguring replaces it and leaves other handlers alone
# (pytest's capture handlers, an embedding application's own).
_HANDLER_NAME: Final = "igw.telemetry"

_verbosity: int = DEFAULT


def stdlib_level(verbosity: int) -> int:
    """The stdlib level a `-v` verbosity lets through (table in the module docstring)."""
    if verbosity >= DEBUG:
        return logging.DEBUG
    if verbosity >= DEFAULT:
        return logging.INFO
    return logging.WARNING


def enabled(level: int) -> bool:
    """Whether events at V-level `level` are wanted at the configured verbosity."""
    return level <= _verbosity


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named `name` (conventionally the module's `__name__`)."""
    return structlog.stdlib.get_logger(name)


def configure_logging(
    verbosity: int = DEFAULT,
    json_format: bool = True,
    *,
    stream: TextIO | None = None,
) -> None:
    """Route all logging to `stream` (default stderr) at the level `verbosity` maps to.

    Calling it again replaces the previous configuration rather than adding a second handler.
    """
    global _verbosity  # noqa: PLW0603 - set once at startup so `enabled` stays a bare comparison
    _verbosity = verbosity
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_renderers(json_format, colors=out.isatty()),
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(stdlib_level(verbosity))


def _shared_processors() -> list[structlog.typing.Processor]:
    """Processors both our events and foreign stdlib records go through before rendering."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _renderers(json_format: bool, *, colors: bool) -> list[structlog.typing.Processor]:
    if json_format:
        return [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_orjson_dumps),
        ]
    # No format_exc_info here: ConsoleRenderer pretty-prints the exception itself.
    return [structlog.dev.ConsoleRenderer(colors=colors)]


def _orjson_dumps(obj: Any, default: Any = None, **_: Any) -> str:
    """`json.dumps`-shaped orjson: a few times faster on the per-request log lines."""
    return orjson.dumps(obj, default=default, option=orjson.OPT_NON_STR_KEYS).decode()
