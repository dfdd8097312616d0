"""`igw-local`: the local inference gateway (`make run`) and a load burst against it (`make load`).

`igw-local run` prints where to send requests and how, then serves until Ctrl-C (or SIGTERM) and
stops every process it started. Its `--epp-config` (an EndpointPickerConfig for the EPP),
`--objective NAME=PRIORITY` (repeatable; requests name theirs in `x-gateway-inference-objective`)
and `--sim-config` (simulator options for every pod, e.g. a smaller capacity) are checked before
anything starts, so a bad file is a usage error naming it (examples/flow-control has a set).
`--failure-mode FailOpen|FailClose` says what Envoy does without the BBR or the EPP
(`igw.e2e.failover`).

`igw-local load` sends a burst of chat requests through a running gateway and prints which pod
served what (see `igw.e2e.load`).

`igw-local run` supervises what it started (`igw.e2e.supervisor`): a BBR, EPP or simulator that
exits is restarted with back-off, each restart logged with the exit status and the count.
`igw-local restart epp|bbr` asks the running gateway (`igw.e2e.control`) for a rolling restart:
the new process serves before the old one drains, and no request fails; `igw-local status` lists
each service's state, pid, slot, uptime and restarts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import tempfile
import typing
from collections.abc import Sequence
from pathlib import Path

from igw.e2e import control

if typing.TYPE_CHECKING:
    from igw.e2e.gateway import LocalGateway

__all__ = ["main"]


# The gateway's modules load in seconds on a busy machine: `restart` and `status` import none.


def banner(gateway: LocalGateway) -> str:
    from igw.e2e import pool  # noqa: PLC0415 - see above

    url, p = gateway.url, gateway.ports
    sims = p.sim_ports
    chat = '{"model": "%s", "messages": [{"role": "user", "content": "Say hello"}]%s}'
    stream = ', "stream": true'
    post = f"  curl -si {url}/v1/chat/completions -H 'content-type: application/json' \\"
    lines = [
        "",
        f"igw local inference gateway is up at {url}",
        "",
        f"  Envoy :{p.listen} -> igw-bbr :{p.bbr_grpc} -> igw-epp :{p.epp_grpc} -> igw-sim pods",
        f"    sim-0  {pool.POD_IP}:{sims[0]}",
        f"    sim-1  {pool.POD_IP}:{sims[1]},{sims[2]} (two data-parallel ranks)",
        f"    sim-2  {pool.ADAPTER_POD_IP}:{sims[3]} (also serves LoRA adapter {pool.ADAPTER})",
        f"  base model {pool.BASE_MODEL}; x-inference-pod in each answer names the pod",
        "",
        "Send requests:",
        post,
        f"       -d '{chat % (pool.BASE_MODEL, '')}'",
        f"  # the LoRA adapter (the BBR maps it to {pool.BASE_MODEL}; the EPP picks sim-2):",
        post,
        f"       -d '{chat % (pool.ADAPTER, '')}'",
        "  # a streamed chat (server-sent events):",
        f"  curl -sN {url}/v1/chat/completions -H 'content-type: application/json' \\",
        f"       -d '{chat % (pool.BASE_MODEL, stream)}'",
        "  # an unknown model gets 404 from Envoy:",
        f'  curl -si {url}/v1/completions -d \'{{"model": "nope", "prompt": "hi"}}\'',
        "",
        "Watch the routing: make load   (a burst of requests; prints which pod served what)",
        "Rolling restart, no request lost: igw-local restart epp   (or bbr);  igw-local status",
        "",
        f"EPP metrics:   http://127.0.0.1:{p.epp_metrics}/metrics",
        f"BBR metrics:   http://127.0.0.1:{p.bbr_metrics}/metrics",
        f"Sim metrics:   http://{pool.POD_IP}:{sims[0]}/metrics (vLLM's names; each rank's port,",
        f"               {sims[0]}-{sims[-1]}, has its own page)",
        f"Envoy admin:   http://127.0.0.1:{p.admin}/",
        f"Logs:          {gateway.workdir}",
        *_tuning_lines(gateway),
        "Stop with Ctrl-C.",
        "",
    ]
    return "\n".join(lines)


def _tuning_lines(gateway: LocalGateway) -> list[str]:
    """What `--epp-config`, `--objective` and `--sim-config` changed, if anything."""
    lines = []
    if gateway.epp_config is not None:
        lines.append(f"EPP config:    {gateway.epp_config} ({gateway.response_mode} responses)")
    if gateway.objectives:
        table = ", ".join(f"{name}={prio}" for name, prio in gateway.objectives.items())
        lines += [
            f"Objectives:    {table}",
            "               (a request names its own: -H 'x-gateway-inference-objective: NAME';",
            "               its tenant: -H 'x-gateway-inference-fairness-id: ID')",
        ]
    if gateway.sim_options:
        options = ", ".join(f"{key}: {value}" for key, value in gateway.sim_options.items())
        lines.append(f"Simulator:     {options} (every pod)")
    if gateway.failure_mode == "FailOpen":
        lines.append("Failure mode:  FailOpen (without the BBR or EPP, Envoy routes on its own)")
    return lines


async def _run(args: argparse.Namespace) -> None:
    from igw.common.serving import wait_for_signal  # noqa: PLC0415 - see banner()
    from igw.e2e.gateway import RESPONSE_MODE, GatewayPorts, LocalGateway  # noqa: PLC0415

    ports = GatewayPorts.free() if args.free_ports else GatewayPorts.from_env()
    if args.port:
        ports = dataclasses.replace(ports, listen=args.port)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="igw-local-"))
    gateway = LocalGateway(
        ports,
        workdir,
        otlp_endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        epp_config=args.epp_config,
        objectives=dict(args.objective),
        sim_options=args.sim_config or {},
        response_mode=args.response_mode or RESPONSE_MODE,
        failure_mode=args.failure_mode,
    )
    await gateway.start()
    try:
        async with control.serve_control(gateway):
            print(banner(gateway), flush=True)  # noqa: T201 - the banner is this command's output
            await wait_for_signal()
    finally:
        print("stopping...", flush=True)  # noqa: T201
        await gateway.stop()


async def _load(args: argparse.Namespace) -> None:
    from igw.e2e import load  # noqa: PLC0415 - see banner()
    from igw.e2e.ports import GatewayPorts  # noqa: PLC0415

    port = args.port or control.default_port()
    plan = load.LoadPlan(
        url=f"http://127.0.0.1:{port}",
        metrics_url=args.metrics_url or f"http://127.0.0.1:{GatewayPorts().epp_metrics}/metrics",
        requests=args.requests,
        concurrency=args.concurrency,
        prompt_prefix_groups=args.prompt_prefix_groups,
    )
    result = await load.run_load(plan)
    print(load.format_report(result), flush=True)  # noqa: T201 - the report is the output


async def _control(args: argparse.Namespace) -> None:
    port = args.port or control.default_port()
    command = f"restart {args.service}" if args.command == "restart" else "status"
    print(await control.request(port, command), flush=True)  # noqa: T201 - the answer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="igw-local", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the local gateway and serve until Ctrl-C")
    run.add_argument("--port", type=int, help="listen port (default $IGW_PORT or 8080)")
    run.add_argument("--workdir", help="where logs and configs go (default: a temp dir)")
    run.add_argument("--free-ports", action="store_true", help=argparse.SUPPRESS)  # tests
    run.add_argument(
        "--epp-config", type=_epp_config, metavar="PATH",
        help="an EndpointPickerConfig file for the EPP (e.g. examples/flow-control/epp.yaml)",
    )  # fmt: skip
    run.add_argument(
        "--objective", type=_objective, action="append", default=[], metavar="NAME=PRIORITY",
        help="an InferenceObjective and its priority (repeatable; negative = sheddable)",
    )  # fmt: skip
    run.add_argument(
        "--sim-config", type=_sim_options, metavar="PATH",
        help="simulator options for every pod, e.g. max-num-seqs: 2 (a smaller pool)",
    )  # fmt: skip
    run.add_argument(
        "--response-mode", choices=("lean", "compatible"), default=None,
        help="how the EPP sees responses: lean (only the bodies it needs; the default) or "
        "compatible (every body, to its end: what a concurrency-detector needs to count "
        "requests in flight until they finish)",
    )  # fmt: skip
    run.add_argument(
        "--failure-mode", choices=("FailClose", "FailOpen"), default="FailClose",
        help="without the BBR or the EPP: FailClose answers 500 (the default, as upstream); "
        "FailOpen lets Envoy route on its own (the pool's round robin; igw.e2e.failover)",
    )  # fmt: skip
    burst = sub.add_parser("load", help="send a burst through a running gateway, show routing")
    burst.add_argument("--port", type=int, help="gateway port (default $IGW_PORT or 8080)")
    burst.add_argument("--requests", type=_positive, default=48, help="how many (48)")
    burst.add_argument("--concurrency", type=_positive, default=8, help="at once (8)")
    burst.add_argument(
        "--prompt-prefix-groups", type=_positive, default=4,
        help="groups sharing a long system prompt; the last asks for the adapter (4)",
    )  # fmt: skip
    burst.add_argument("--metrics-url", help="the EPP's /metrics (default :9090)")
    restart = sub.add_parser(
        "restart", help="rolling restart of the running gateway's epp or bbr (no request fails)"
    )
    restart.add_argument("service", choices=("epp", "bbr"))
    status = sub.add_parser("status", help="the running gateway's services, pids and restarts")
    for command in (restart, status):
        command.add_argument("--port", type=int, help="gateway port (default $IGW_PORT or 8080)")
    return parser


def _epp_config(text: str) -> Path:
    """An EndpointPickerConfig file the EPP will load: refused here, naming it, if it cannot."""
    from igw.epp.config import load_config_file  # noqa: PLC0415 - see banner()

    path = Path(text)
    try:
        load_config_file(path)
    except ValueError as e:  # ConfigError, or a plugin refusing its parameters
        raise argparse.ArgumentTypeError(f"{text}: {e}") from None
    return path


def _objective(text: str) -> tuple[str, int]:
    name, sep, priority = text.partition("=")
    try:
        value = int(priority)
    except ValueError:
        sep = ""
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=PRIORITY (an integer), got {text!r}")
    return name.strip(), value


def _sim_options(text: str) -> dict[str, object]:
    from igw.e2e import pool  # noqa: PLC0415 - see banner()

    try:
        return pool.read_sim_options(Path(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command in ("run", "load"):
        from igw.common.telemetry import configure_logging  # noqa: PLC0415 - see banner()

        configure_logging(2, json_format=False)
    command = {"run": _run, "load": _load, "restart": _control, "status": _control}[args.command]
    try:
        asyncio.run(command(args))
    except (RuntimeError, OSError) as e:  # GatewayDownError is a RuntimeError
        print(f"igw-local: {e}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
