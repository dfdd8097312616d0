"""Command-line pieces both services share: Go-style flag values, upstream's logging flags, and
the serve-until-signal run.

Upstream's binaries use Go's `flag` package, so manifests pass `--streaming`, `--streaming=false`
and `-v=3`; these parsers accept the same spellings. `logging_flags` adds the logging flags both
upstream binaries take (`-v` and controller-runtime's `--zap-*`, with their defaults: development
mode on, so console logs unless `--zap-encoder json`, as upstream's charts pass) and
`--enable-pprof`, accepted for manifests' sake: Go's pprof has no counterpart here (py-spy
attaches from outside). `serve` runs a service on uvloop until SIGTERM or SIGINT and stops it in
order; `shutdown_flags` adds how that stop drains (`igw.common.serving` describes the steps):

    --grace-period   25s  in-flight streams may finish for this long after new ones are refused;
                          with the default shutdown delay it fits Kubernetes' default
                          terminationGracePeriodSeconds (30 s) with 5 s to spare
    --shutdown-delay 0s   new streams are still taken this long after readiness turned
                          NOT_SERVING, for a proxy that has not noticed yet (the local gateway's
                          rolling restart uses 3 s; on Kubernetes, about the endpoint update delay)
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Protocol

import uvloop

from igw.common.serving import wait_for_signal

__all__ = [
    "Service",
    "bool_flag",
    "distinct_ports",
    "go_bool",
    "go_style_argv",
    "logging_choice",
    "logging_flags",
    "port",
    "seconds",
    "serve",
    "shutdown_flags",
]

GRACE_PERIOD_S = 25.0
SHUTDOWN_DELAY_S = 0.0

_ZAP_LEVELS = {"debug": 1, "info": 0, "error": 0}
"""`--zap-log-level` names as logr verbosities (zap level = -v): `info` logs V(0) only."""


def go_bool(text: str) -> bool:
    """A Go flag boolean: 1/t/true or 0/f/false, any case."""
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def port(text: str) -> int:
    """A TCP port, 0-65535; 0 lets the system pick a free one (the service logs which)."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number 0-65535, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {number}")
    return number


def distinct_ports(ports: Sequence[int]) -> bool:
    """Whether the ports asked for can all be bound: no number twice, but for 0 (any free one)."""
    fixed = [number for number in ports if number != 0]
    return len(set(fixed)) == len(fixed)


def bool_flag(parser: argparse.ArgumentParser, name: str, default: bool, text: str) -> None:
    """A boolean flag that works bare (`--flag`) or with a value (`--flag=false`)."""
    parser.add_argument(name, type=go_bool, nargs="?", const=True, default=default, help=text)


def _zap_level(text: str) -> int:
    if text.lower() in _ZAP_LEVELS:
        return _ZAP_LEVELS[text.lower()]
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected debug, info, error or a number > 0, got {text!r}")


def logging_flags(parser: argparse.ArgumentParser) -> None:
    """`-v`, the `--zap-*` family and `--enable-pprof`, as upstream's binaries take them."""
    flag = parser.add_argument
    flag("-v", "--v", dest="verbosity", type=int, default=2,
         help="log verbosity: 2 default, 3 verbose (a line per request), 4 debug")  # fmt: skip
    bool_flag(parser, "--zap-devel", True, "development logging: console format (default true)")
    flag("--zap-encoder", choices=("json", "console"), default=None,
         help="log format (default: console with --zap-devel, else json)")  # fmt: skip
    flag("--zap-log-level", type=_zap_level, default=None,
         help="debug, info, error or a verbosity number; overrides -v")  # fmt: skip
    flag("--zap-stacktrace-level", choices=("info", "error", "panic"), default=None,
         help="accepted; errors are logged with their traceback")  # fmt: skip
    flag("--zap-time-encoding", default=None,
         choices=("epoch", "millis", "nano", "iso8601", "rfc3339", "rfc3339nano"),
         help="accepted; times are logged in ISO 8601")  # fmt: skip
    bool_flag(parser, "--enable-pprof", True, "accepted; Go's pprof has no counterpart here")


def logging_choice(args: argparse.Namespace) -> tuple[int, bool]:
    """(verbosity, JSON format) from the flags `logging_flags` added."""
    verbosity = args.zap_log_level if args.zap_log_level is not None else args.verbosity
    encoder = args.zap_encoder or ("console" if args.zap_devel else "json")
    return verbosity, encoder == "json"


def seconds(text: str) -> float:
    """A duration: `20`, `20s` or `500ms` (Go's spellings for whole units); never negative."""
    scale = 1.0
    number = text
    if text.endswith("ms"):
        number, scale = text[:-2], 0.001
    elif text.endswith("s"):
        number = text[:-1]
    try:
        value = float(number) * scale
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a duration such as 20s or 500ms, got {text!r}")
    return value


def shutdown_flags(parser: argparse.ArgumentParser) -> None:
    """`--grace-period` and `--shutdown-delay` (module docstring), in seconds as floats."""
    parser.add_argument(
        "--grace-period", type=seconds, default=GRACE_PERIOD_S, metavar="DURATION",
        help="on SIGTERM, how long in-flight streams may finish after new ones are refused "
        f"(default {GRACE_PERIOD_S:g}s)",
    )  # fmt: skip
    parser.add_argument(
        "--shutdown-delay", type=seconds, default=SHUTDOWN_DELAY_S, metavar="DURATION",
        help="on SIGTERM, how long new streams are still taken after readiness turned "
        f"NOT_SERVING (default {SHUTDOWN_DELAY_S:g}s)",
    )  # fmt: skip


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
