"""`igw-local`: runs the local inference gateway in the foreground (`make run`).

Prints where to send requests and how, then serves until Ctrl-C (or SIGTERM) and stops every
process it started.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from igw.common.serving import wait_for_signal
from igw.common.telemetry import configure_logging
from igw.e2e.gateway import GatewayPorts, LocalGateway

__all__ = ["main"]


def banner(gateway: LocalGateway) -> str:
    url, p = gateway.url, gateway.ports
    body = '{"model": "%s", "prompt": "Say hello"}'
    lines = [
        "",
        f"igw local gateway is up at {url}",
        "",
        "  Envoy ──ext_proc──> igw-bbr ──route on x-gateway-model-name──> backend a | b",
        "",
        "Try it (each answer says which backend served it and what it received):",
        f"  curl -s {url}/v1/completions -H 'content-type: application/json' \\",
        f"       -d '{body % 'a'}'",
        f"  curl -s {url}/v1/completions -H 'content-type: application/json' \\",
        f"       -d '{body % 'b'}'",
        "  # a LoRA adapter of base model a, routed by x-gateway-base-model-name:",
        f"  curl -s {url}/v1/completions -d '{body % 'a-lora-1'}'",
        "  # malformed JSON is refused by the BBR with 400:",
        f"  curl -si {url}/v1/completions -d '{{oops'",
        "",
        f"BBR metrics:   http://127.0.0.1:{p.bbr_metrics}/metrics",
        f"Envoy admin:   http://127.0.0.1:{p.admin}/",
        f"Logs:          {gateway.workdir}",
        "Stop with Ctrl-C.",
        "",
    ]
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> None:
    ports = GatewayPorts.from_env()
    if args.port:
        ports = dataclasses.replace(ports, listen=args.port)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="igw-local-"))
    gateway = LocalGateway(
        ports, workdir, otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    await gateway.start()
    try:
        print(banner(gateway), flush=True)  # noqa: T201 - the banner is this command's output
        await wait_for_signal()
    finally:
        print("stopping...", flush=True)  # noqa: T201
        await gateway.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="igw-local", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the local gateway and serve until Ctrl-C")
    run.add_argument(
        "--port", type=int, default=None, help="listen port (default $IGW_PORT or 8080)"
    )
    run.add_argument(
        "--workdir", default=None, help="where logs and configs go (default: a temp dir)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(2, json_format=False)
    try:
        asyncio.run(_run(args))
    except (RuntimeError, OSError) as e:
        print(f"igw-local: {e}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
