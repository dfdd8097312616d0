"""`igw-sim`: serve simulated vLLM pods, e.g. `igw-sim --port 8000 --model NAME`.

Every option of `igw.sim.config.OPTIONS` is a flag here and a key in the `--config` YAML file;
flags win over the file, the file over the defaults. Several values may follow one flag or be
comma-separated (`--failure-types rate_limit,server_error`, `--lora-modules a=/p b=/q`).

The process runs on uvloop; SIGTERM or SIGINT stops every pod in order (health 503, in-flight
requests get a grace period, engines stop) and exits 0. A bad option or an unusable config file
is a usage error (exit 2); a pod that cannot start (a port in use) exits 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvloop

from igw.common.serving import wait_for_signal
from igw.common.telemetry import configure_logging, configure_tracing, get_logger, shutdown_tracing
from igw.sim.config import OPTIONS, ConfigError, SimConfig, build, read_yaml
from igw.sim.fleet import Fleet, RankPlan, plan

__all__ = ["main", "parse_args"]

_log = get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="igw-sim",
        description=__doc__.split("\n")[0],
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", type=Path, help="YAML file with the same option names")
    for option in OPTIONS:
        flags = [f"--{name}" for name in (option.name, *option.aliases)]
        if option.name == "v":
            flags.insert(0, "-v")
        kwargs: dict[str, Any] = {"dest": option.name, "help": option.help}
        if option.many:
            kwargs.update(nargs="+", action="extend")
        elif option.name == "tracing":
            kwargs.update(nargs="?", const="true")  # `--tracing`, `--tracing=false`
        parser.add_argument(*flags, **kwargs)
    return parser


def parse_args(argv: Sequence[str]) -> tuple[SimConfig, list[RankPlan]]:
    """The configuration and its plan; exits with a usage message when either is unusable."""
    parser = _parser()
    args = vars(parser.parse_args(list(argv)))
    path: Path | None = args.pop("config", None)
    try:
        flags = {name: _parse_flag(name, raw) for name, raw in args.items()}
        document = read_yaml(path) if path is not None else None
        config = build(flags, document)
        return config, plan(config)
    except (ConfigError, OSError) as e:
        parser.error(str(e))


def _parse_flag(name: str, raw: object) -> object:
    option = next(o for o in OPTIONS if o.name == name)
    try:
        return option.parse(raw)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"--{name}: {e}") from None


async def _serve(config: SimConfig, plans: list[RankPlan]) -> None:
    provider = configure_tracing("igw-sim", enabled=config.tracing)
    fleet = Fleet(plans, tracer_provider=provider)
    try:
        await fleet.start()
        await wait_for_signal()
    finally:
        await fleet.stop()
        shutdown_tracing(provider)


def main(argv: Sequence[str] | None = None) -> int:
    config, plans = parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(config.verbosity, json_format=config.log_format == "json")
    try:
        uvloop.run(_serve(config, plans))
    except (OSError, ValueError, RuntimeError) as e:
        _log.error("igw-sim failed", error=str(e))
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
