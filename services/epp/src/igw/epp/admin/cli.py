"""`igw-epp endpoints` and `igw-epp explain`: the admin API as tables, for operators.

Both talk to a running EPP's admin service, served on its gRPC health port (default
`127.0.0.1:9003`, insecure like health: keep that port off untrusted networks). The main
`igw-epp` command registers them with `add_admin_commands(subparsers)`, or, while its parser has
no subcommands, hands `argv` over with `admin_main(argv)` when `argv[0]` is in `ADMIN_COMMANDS`.

    igw-epp endpoints
    igw-epp explain --model meta-llama/Llama-3.1-8B-Instruct --prompt "Hello"
    igw-epp explain --body @request.json --path /v1/completions -H 'x-request-id: r1'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import grpc

from igw.common.openai import ApiType, api_type_for_path
from igw.epp.admin.service import AdminClient
from igw.epp.admin.tables import endpoints_table, explain_table

__all__ = ["ADMIN_COMMANDS", "DEFAULT_ADMIN_ADDRESS", "add_admin_commands", "admin_main"]

ADMIN_COMMANDS = ("endpoints", "explain")
DEFAULT_ADMIN_ADDRESS = "127.0.0.1:9003"

_Run = Callable[[AdminClient, argparse.Namespace], Coroutine[Any, Any, str]]


def add_admin_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `endpoints` and `explain`; each sets `args.admin_run`, which `run_admin` runs."""
    endpoints = subparsers.add_parser("endpoints", help="the pool's endpoints, metrics, load")
    _address(endpoints)
    endpoints.set_defaults(admin_run=_endpoints)
    explain = subparsers.add_parser("explain", help="how the EPP would route a request")
    _address(explain)
    explain.add_argument("--model", default="", help="the body's model (with --prompt)")
    body = explain.add_mutually_exclusive_group()
    body.add_argument("--prompt", default="", help="a prompt to build the body from")
    body.add_argument("--body", help="the request body: JSON text, or @file.json")
    explain.add_argument("--path", default="/v1/chat/completions", help="the request path")
    explain.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
        help="a request header (repeatable)",
    )  # fmt: skip
    explain.set_defaults(admin_run=_explain)


def _address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--admin-address", default=DEFAULT_ADMIN_ADDRESS,
        help=f"the EPP's admin service, on its gRPC health port (default {DEFAULT_ADMIN_ADDRESS})",
    )  # fmt: skip


def admin_main(argv: Sequence[str]) -> int:
    """`igw-epp <admin command> ...`; returns the exit status."""
    parser = argparse.ArgumentParser(prog="igw-epp")
    add_admin_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    try:
        return run_admin(args)
    except ValueError as e:
        parser.error(str(e))  # exits with status 2


def run_admin(args: argparse.Namespace) -> int:
    """Runs the command `add_admin_commands` parsed; prints its table. Raises `ValueError` for a
    bad argument (a header without a colon, an unreadable body file)."""
    run: _Run = args.admin_run
    try:
        text = asyncio.run(_call(args.admin_address, run, args))
    except grpc.aio.AioRpcError as e:
        sys.stderr.write(f"igw-epp: {args.admin_address}: {e.code().name}: {e.details()}\n")
        return 1
    sys.stdout.write(text + "\n")
    return 0


async def _call(address: str, run: _Run, args: argparse.Namespace) -> str:
    async with grpc.aio.insecure_channel(address) as channel:
        return await run(AdminClient(channel), args)


async def _endpoints(client: AdminClient, _args: argparse.Namespace) -> str:
    return endpoints_table(await client.list_endpoints())


async def _explain(client: AdminClient, args: argparse.Namespace) -> str:
    headers = parse_headers(args.header)
    body = read_body(args.body) if args.body is not None else build_body(
        args.path, args.model, args.prompt
    )  # fmt: skip
    return explain_table(await client.explain(args.path, headers, body))


def parse_headers(items: Sequence[str]) -> dict[str, str]:
    """`NAME: VALUE` strings -> lower-case names (as Envoy sends them) -> values."""
    headers: dict[str, str] = {}
    for item in items:
        name, colon, value = item.partition(":")
        if not colon or not name.strip():
            raise ValueError(f"-H expects 'NAME: VALUE', got {item!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def read_body(spec: str) -> bytes:
    """`@path` reads the file; anything else is the body itself."""
    if not spec.startswith("@"):
        return spec.encode()
    try:
        return Path(spec[1:]).read_bytes()
    except OSError as e:
        raise ValueError(f"cannot read body file {spec[1:]}: {e.strerror}") from None


def build_body(path: str, model: str, prompt: str) -> bytes:
    """A minimal body of the path's API type; without a model the EPP answers its 400."""
    api_type = api_type_for_path(path)
    document: dict[str, Any] = {"model": model} if model else {}
    if api_type is ApiType.CHAT_COMPLETIONS:
        document["messages"] = [{"role": "user", "content": prompt}]
    elif api_type in (ApiType.RESPONSES, ApiType.EMBEDDINGS):
        document["input"] = prompt
    elif api_type is ApiType.CONVERSATIONS:
        document["items"] = [{"type": "message", "role": "user", "content": prompt}]
    else:
        document["prompt"] = prompt
    return json.dumps(document).encode()
