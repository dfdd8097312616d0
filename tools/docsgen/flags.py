"""Flag reference pages, read from the programs' own argparse parsers.

Each program's parser is built by the function its `main` uses, so a new flag, a changed default
or new help text shows up here on the next `make docs-gen`, and the freshness test fails until
then. The parsers are private to their CLIs (`_parser`): a documentation generator is the one
reader outside them that needs the parser itself rather than parsed options.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from igw.bbr import cli as bbr_cli
from igw.e2e import cli as local_cli
from igw.epp import cli as epp_cli
from igw.epp.admin import add_admin_commands
from igw.sim import cli as sim_cli
from tools.docsgen._markdown import GENERATED_NOTE, code, table

__all__ = ["PROGRAMS", "Program", "flags_page"]


def _epp_admin_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="igw-epp")
    add_admin_commands(parser.add_subparsers())
    return parser


@dataclass(frozen=True, slots=True)
class Program:
    page: str
    """The page's path under docs/."""
    title: str
    intro: str
    parsers: tuple[Callable[[], argparse.ArgumentParser], ...]


PROGRAMS: tuple[Program, ...] = (
    Program(
        "reference/flags-epp.md",
        "igw-epp flags",
        "The Endpoint Picker's flags, with upstream GIE's names and defaults where upstream has "
        "the flag; `igw-epp endpoints` and `igw-epp explain` talk to a running EPP's admin API "
        "(see [Troubleshooting](../troubleshooting.md)).",
        (epp_cli._parser, _epp_admin_parser),
    ),
    Program(
        "reference/flags-bbr.md",
        "igw-bbr flags",
        "The Body-Based Router's flags, with upstream GIE's names and defaults where upstream "
        "has the flag.",
        (bbr_cli._parser,),
    ),
    Program(
        "reference/flags-sim.md",
        "igw-sim flags",
        "The vLLM-compatible simulator's flags (see [the simulator](../guides/simulator.md)).",
        (sim_cli._parser,),
    ),
    Program(
        "reference/flags-local.md",
        "igw-local flags",
        "The local gateway's commands and flags (`make run` is `igw-local run $(RUN_ARGS)`; see "
        "[the local gateway](../getting-started/local-gateway.md)).",
        (local_cli._parser,),
    ),
)

_TYPE_NAMES = {
    "port": "port",
    "go_bool": "bool",
    "_duration": "duration",
    "seconds": "duration",
    "_rate": "0 to 1",
    "int": "int",
    "float": "float",
    "str": "string",
    "Path": "path",
    "PosixPath": "path",
    "_zap_level": "level or int",
    "_positive": "int > 0",
}


def _type(action: argparse.Action) -> str:
    if action.choices is not None and not isinstance(action.choices, dict):
        return ", ".join(code(str(c)) for c in action.choices)
    if isinstance(action, argparse._StoreConstAction):
        return "bool"
    kind = action.type
    if kind is None:
        return "string"
    name = getattr(kind, "__name__", type(kind).__name__)
    if name in _TYPE_NAMES:
        return _TYPE_NAMES[name]
    return action.metavar if isinstance(action.metavar, str) else name.strip("_")


def _default(action: argparse.Action) -> str:
    value = action.default
    if value == argparse.SUPPRESS:
        return "see text"  # igw-sim: defaults come from the preset or the --config file
    if value is None or value in ([], ""):
        return "none"
    if isinstance(value, bool):
        return code(str(value).lower())
    if isinstance(value, float) and _type(action) == "duration":
        return code(f"{value:g}s")
    return code(str(value))


def _flags(action: argparse.Action) -> str:
    names = " ".join(code(o) for o in action.option_strings) or code(action.dest)
    if isinstance(action, argparse._AppendAction):
        names += " (repeatable)"
    return names


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.help != argparse.SUPPRESS
        and not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
    ]


def _subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield from action.choices.items()


def _section(title: str, parser: argparse.ArgumentParser) -> str:
    rows = [(_flags(a), _default(a), _type(a), a.help or "") for a in _options(parser)]
    if not rows:
        return f"## {title}\n\nNo flags.\n"
    return f"## {title}\n\n" + table(("Flag", "Default", "Type", "What it does"), rows)


def flags_page(program: Program) -> str:
    parts = [GENERATED_NOTE, f"# {program.title}", program.intro]
    for build in program.parsers:
        parser = build()
        if _options(parser):
            parts.append(_section(f"`{parser.prog}`", parser))
        for name, sub in _subcommands(parser):
            parts.append(_section(f"`{parser.prog} {name}`", sub))
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"
