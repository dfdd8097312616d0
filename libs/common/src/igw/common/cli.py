"""Command-line pieces both services share: Go-style flag values and the serve-until-signal run.

Upstream's binaries use Go's `flag` package, so manifests pass `--streaming`, `--streaming=false`
and `-v=3`; these parsers accept the same spellings. `serve` runs a service on uvloop until
SIGTERM or SIGINT and stops it in order.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Protocol

import uvloop

from igw.common.serving import wait_for_signal

__all__ = ["Service", "bool_flag", "go_bool", "go_style_argv", "port", "serve"]


def go_bool(text: str) -> bool:
    """A Go flag boolean: 1/t/true or 0/f/false, any case."""
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def port(text: str) -> int:
    """A TCP port, 1-65535."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number 1-65535, got {text!r}") from None
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1-65535, got {number}")
    return number


def bool_flag(parser: argparse.ArgumentParser, name: str, default: bool, text: str) -> None:
    """A boolean flag that works bare (`--flag`) or with a value (`--flag=false`)."""
    parser.add_argument(name, type=go_bool, nargs="?", const=True, default=default, help=text)


def go_style_argv(argv: Sequence[str]) -> list[str]:
    """Go's flag package accepts `-v=3`; argparse understands `=` only on long options."""
    return ["--v" + arg[2:] if arg.startswith("-v=") else arg for arg in argv]


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def _run(service: Service) -> None:
    await service.start()
    try:
        await wait_for_signal()
    finally:
        await service.stop()


def serve(service: Service) -> None:
    """Starts `service` on uvloop, serves until SIGTERM or SIGINT, then stops it."""
    uvloop.run(_run(service))
