"""`igw-bbr`: the Body-Based Router's command line, with upstream GIE's flags and defaults.

Flags match upstream's `pkg/bbr/server/options.go` (Go-style booleans: `--streaming`,
`--streaming=false`), plus igw's own `--adapters-file`, `--kubernetes`, `--host` and
`--serve-models-endpoint` (the BBR answers the OpenAI `GET /v1/models`; `false` = upstream's
pass-through), `--health-checking` (gRPC health on the ext_proc port too, as the EPP's flag) and
the graceful-stop flags `--grace-period` and `--shutdown-delay` (`igw.common.cli`). Flags that
name Go-only features are accepted so existing manifests keep working, and say what they do here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from igw.bbr.registry import DEFAULT_PLUGINS, parse_plugin_flag
from igw.bbr.server import BbrOptions, BbrService
from igw.common.cli import (
    bool_flag,
    distinct_ports,
    go_style_argv,
    logging_choice,
    logging_flags,
    port,
    serve,
    shutdown_flags,
)
from igw.common.telemetry import configure_logging

__all__ = ["main", "parse_args"]

_log = structlog.get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="igw-bbr", description=__doc__.split("\n")[0])
    _serving_flags(parser)
    _plugin_flags(parser)
    _logging_flags(parser)
    return parser


def _serving_flags(p: argparse.ArgumentParser) -> None:
    """Where and how the ext_proc, health and metrics servers listen."""
    flag = p.add_argument
    flag("--grpc-port", type=port, default=9004, help="ext_proc gRPC port (default 9004)")
    flag("--grpc-health-port", type=port, default=9005, help="gRPC health port (default 9005)")
    flag("--metrics-port", type=port, default=9090, help="Prometheus /metrics port (default 9090)")
    flag("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    bool_flag(
        p,
        "--streaming",
        False,
        "full-duplex streamed bodies (Envoy FULL_DUPLEX_STREAMED); else buffered",
    )
    bool_flag(
        p,
        "--secure-serving",
        True,
        "serve ext_proc over TLS (default true; self-signed unless --cert-path)",
    )
    flag("--cert-path", type=Path, default=None, help="directory with tls.crt and tls.key")
    bool_flag(p, "--health-checking", False, "also serve gRPC health on the ext_proc port")
    shutdown_flags(p)
    bool_flag(
        p,
        "--metrics-endpoint-auth",
        True,
        "require a Kubernetes bearer token allowed to GET /metrics (TokenReview and "
        "SubjectAccessReview; needs a cluster or a kubeconfig; default true)",
    )


def _plugin_flags(p: argparse.ArgumentParser) -> None:
    """The request plugins and the LoRA adapter mappings they read."""
    flag = p.add_argument
    flag(
        "--plugin",
        action="append",
        default=[],
        metavar="TYPE:NAME[:JSON]",
        help="a request plugin, repeatable, run in order (default: body-field-to-header for "
        "model, then base-model-to-header)",
    )
    flag(
        "--adapters-file",
        type=Path,
        default=None,
        help="YAML file mapping LoRA adapters to base models (local alternative to ConfigMaps)",
    )
    flag(
        "--kubernetes",
        choices=("auto", "on", "off"),
        default="auto",
        help="watch bbr-managed ConfigMaps: auto = when a cluster configuration is found",
    )
    bool_flag(
        p,
        "--serve-models-endpoint",
        True,
        "answer GET /v1/models and /v1/models/{id} with the base models and adapters the BBR "
        "knows, in OpenAI's shape (default true; false passes them through, as upstream)",
    )


def _logging_flags(p: argparse.ArgumentParser) -> None:
    """Traces and logs, and upstream's Go-only `--enable-pprof` (accepted)."""
    bool_flag(
        p,
        "--tracing",
        True,
        "OpenTelemetry tracing, configured by the OTEL_* variables (default true)",
    )
    logging_flags(p)


def parse_args(argv: Sequence[str]) -> tuple[BbrOptions, argparse.Namespace]:
    """Options from command-line arguments; exits with a usage message on a bad flag."""
    # Go's flag package accepts -v=3; argparse only understands that for long options.
    args_in = go_style_argv(argv)
    parser = _parser()
    args = parser.parse_args(args_in)
    ports = [args.grpc_port, args.grpc_health_port, args.metrics_port]
    if not distinct_ports(ports):
        parser.error(f"ports must differ, got {ports}")
    try:
        plugins = tuple(parse_plugin_flag(text) for text in args.plugin) or DEFAULT_PLUGINS
    except ValueError as e:
        parser.error(str(e))
    options = BbrOptions(
        grpc_port=args.grpc_port,
        grpc_health_port=args.grpc_health_port,
        metrics_port=args.metrics_port,
        host=args.host,
        streaming=args.streaming,
        secure_serving=args.secure_serving,
        cert_path=args.cert_path,
        plugins=plugins,
        adapters_file=args.adapters_file,
        kubernetes=args.kubernetes,
        tracing=args.tracing,
        metrics_endpoint_auth=args.metrics_endpoint_auth,
        serve_models_endpoint=args.serve_models_endpoint,
        health_checking=args.health_checking,
        grace_s=args.grace_period,
        shutdown_delay_s=args.shutdown_delay,
    )
    return options, args


def main(argv: Sequence[str] | None = None) -> int:
    options, args = parse_args(sys.argv[1:] if argv is None else argv)
    verbosity, json_format = logging_choice(args)
    configure_logging(verbosity, json_format=json_format)
    try:
        serve(BbrService(options))
    except (ValueError, OSError, RuntimeError) as e:
        _log.error("bbr failed to start", error=str(e))
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
