"""`igw-epp`: the Endpoint Picker's command line, with upstream GIE's flags and defaults (§9.1).

Booleans are Go-style (`--secure-serving`, `--secure-serving=false`). Where the endpoints come
from is exactly one of: `--pool-name` (an InferencePool, `--pool-namespace`, `--pool-group`),
`--endpoint-selector` with `--endpoint-target-ports` (standalone mode, no InferencePool; the pool
is named after the EPP's Deployment, from `POD_NAME`), or igw's `--endpoints-file` (a static file,
no cluster needed), with `--objective NAME=PRIORITY` standing in for InferenceObjectives there.
Flags upstream removed (the metric-name flags) are refused with a message saying what to use
instead; Go-only flags (pprof, zap) are accepted so manifests keep working.
`--ha-enable-leader-election` (active-passive replicas, `igw.epp.server`) needs Kubernetes.
`--grace-period` and `--shutdown-delay` say how SIGTERM drains (`igw.common.cli`).

`--workers N` (igw's own, default 1: one process, as upstream) runs N processes on the one
ext_proc port that share one view of the pool (`igw.epp.workers`, docs/concepts/workers.md):
worker 0 serves `--grpc-health-port` and `--metrics-port`, worker I its metrics on
`--metrics-port + I`. `--worker-index` and `--worker-dir` are how the parent starts each worker.

`--response-sample-rate` (igw's own, default 0.0) matters only in the lean response mode, where
Envoy's EPP filter has `response_body_mode: STREAMED`: the share of responses whose body the EPP
still reads for usage, latency and size metrics. Bodies are always read when the model name must
be written back, and always in upstream's compatible mode (FULL_DUPLEX_STREAMED). The two modes
and their trade-offs are described in `igw.epp.server` and docs/concepts/response-modes.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from igw.common.cli import (
    bool_flag,
    distinct_ports,
    go_bool,
    go_style_argv,
    logging_choice,
    logging_flags,
    port,
    serve,
    shutdown_flags,
)
from igw.common.telemetry import configure_logging
from igw.epp.admin import ADMIN_COMMANDS, admin_main
from igw.epp.config import PROFILES, ConfigError
from igw.epp.discovery import (
    DEFAULT_POOL_GROUP,
    LEGACY_POOL_GROUP,
    MAX_TARGET_PORTS,
    PoolOptions,
    StaticDiscoveryError,
    deployment_name,
)
from igw.epp.server import EppOptions, EppService
from igw.epp.units import parse_duration
from igw.epp.workers import Supervisor, WorkerRole, die_with_parent

__all__ = ["main", "parse_args"]

_log = structlog.get_logger(__name__)

_REMOVED_METRIC_FLAGS = (
    "total-queued-requests-metric", "total-running-requests-metric",
    "kv-cache-usage-percentage-metric", "lora-info-metric", "cache-info-metric",
)  # fmt: skip


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def _count(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise argparse.ArgumentTypeError(
            f"expected a number of processes from 1 to 64, got {text!r}"
        )
    return int(text)


def _config_text(args: argparse.Namespace) -> str | None:
    """`--config-text`, or the text of the named `--config-profile`."""
    profile: str | None = args.config_profile
    return PROFILES[profile] if profile is not None else args.config_text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="igw-epp", description=__doc__.split("\n")[0])
    flag = p.add_argument
    flag("--grpc-port", type=port, default=9002, help="ext_proc gRPC port (default 9002)")
    flag("--grpc-health-port", type=port, default=9003, help="gRPC health port (default 9003)")
    flag("--metrics-port", type=port, default=9090, help="Prometheus /metrics port (default 9090)")
    flag("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")
    _config_flags(p)
    _discovery_flags(p)
    flag(
        "--objective",
        action="append",
        default=[],
        metavar="NAME=PRIORITY",
        help="an inference objective and its priority (repeatable; negative = sheddable)",
    )
    flag("--refresh-metrics-interval", type=_duration, default=0.05, help="default 50ms")
    flag("--refresh-prometheus-metrics-interval", type=_duration, default=5.0,
         help="accepted; pool gauges are computed at scrape time")  # fmt: skip
    flag("--metrics-staleness-threshold", type=_duration, default=2.0, help="default 2s")
    # Deprecated upstream in favour of the metrics-data-source plugin's parameters; still honoured.
    flag(
        "--model-server-metrics-scheme",
        choices=("http", "https"),
        default=None,
        help="deprecated: metrics-data-source scheme (overrides the config's)",
    )
    flag(
        "--model-server-metrics-path",
        default=None,
        help="deprecated: metrics-data-source path (overrides the config's)",
    )
    flag(
        "--model-server-metrics-https-insecure-skip-verify",
        type=go_bool,
        nargs="?",
        const=True,
        default=None,
        help="deprecated: metrics-data-source insecureSkipVerify (overrides)",
    )
    flag("--response-sample-rate", type=_rate, default=0.0,
         help="lean response mode: share of bodies read for metrics (default 0)")  # fmt: skip
    bool_flag(p, "--secure-serving", True, "serve ext_proc over TLS (default true)")
    flag("--cert-path", type=Path, default=None, help="directory with tls.crt and tls.key")
    bool_flag(p, "--enable-cert-reload", False,
              "serve --cert-path's files as they change, from the next connection on")  # fmt: skip
    bool_flag(p, "--health-checking", False, "also serve gRPC health on the ext_proc port")
    shutdown_flags(p)
    bool_flag(p, "--disable-endpoint-subset-filter", False, "ignore the proxy's subset hint")
    bool_flag(p, "--tracing", True, "OpenTelemetry tracing, configured by OTEL_* (default true)")
    bool_flag(p, "--metrics-endpoint-auth", True, "check scrapers' tokens with the Kubernetes API")
    bool_flag(p, "--ha-enable-leader-election", False,
              "active-passive replicas: only the holder of the pool's Lease is ready")  # fmt: skip
    logging_flags(p)
    _worker_flags(p)
    for name in _REMOVED_METRIC_FLAGS:
        flag(f"--{name}", default=None, help=argparse.SUPPRESS)
    return p


def _worker_flags(p: argparse.ArgumentParser) -> None:
    """`--workers`, and how the parent tells each worker which one it is (hidden)."""
    flag = p.add_argument
    flag("--workers", type=_count, default=1,
         help="processes serving ext_proc on one port, sharing the pool (default 1)")  # fmt: skip
    flag("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    flag("--worker-dir", type=Path, default=None, help=argparse.SUPPRESS)


def _config_flags(p: argparse.ArgumentParser) -> None:
    """Where the EndpointPickerConfig comes from: one of a file, text, or a profile igw ships."""
    config = p.add_mutually_exclusive_group()
    config.add_argument("--config-file", type=Path, help="EndpointPickerConfig YAML file")
    config.add_argument("--config-text", help="EndpointPickerConfig YAML text")
    config.add_argument(
        "--config-profile",
        choices=sorted(PROFILES),
        help="a configuration igw ships (igw.epp.config.profiles), instead of upstream's default",
    )


def _discovery_flags(p: argparse.ArgumentParser) -> None:
    flag = p.add_argument
    flag("--pool-name", default="", help="the InferencePool whose pods this EPP serves")
    flag(
        "--pool-namespace",
        default="",
        help="the pool's namespace (default: $NAMESPACE, else default)",
    )
    flag(
        "--pool-group",
        default=DEFAULT_POOL_GROUP,
        help=f"the InferencePool's API group ({LEGACY_POOL_GROUP} for v1alpha2 pools)",
    )
    flag(
        "--endpoint-selector",
        type=_selector,
        default=None,
        metavar="K=V[,K=V]",
        help="standalone mode: the labels of the model-server pods (no InferencePool)",
    )
    flag(
        "--endpoint-target-ports",
        type=_ports,
        action="append",
        default=[],
        metavar="PORT[,PORT]",
        help="standalone mode: 1 to 8 serving ports of each pod",
    )
    flag(
        "--model-server-metrics-port",
        type=int,
        default=0,
        help="deprecated: the metrics port of single-port pools (default: the serving port)",
    )
    flag("--endpoints-file", type=Path, help="without Kubernetes: a YAML file of endpoints")


def _selector(text: str) -> dict[str, str]:
    """`k=v,k2=v2` (equality only, as upstream's ConvertSelectorToLabelsMap)."""
    selector: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip().removeprefix("=").strip()
        if not sep or not key:
            raise argparse.ArgumentTypeError(f"expected KEY=VALUE[,KEY=VALUE], got {text!r}")
        selector[key] = value
    return selector


def _ports(text: str) -> list[int]:
    try:
        ports = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected port numbers, got {text!r}") from None
    for number in ports:
        if not 0 < number <= 65535:
            raise argparse.ArgumentTypeError(f"invalid port number {number}")
    return ports


def _refuse(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in _REMOVED_METRIC_FLAGS:
        if getattr(args, name.replace("-", "_")) is not None:
            parser.error(
                f"--{name} was removed upstream; map metrics with the core-metrics-extractor "
                "plugin's engineConfigs in the EndpointPickerConfig instead"
            )
    if args.ha_enable_leader_election and args.endpoints_file:
        parser.error(
            "--ha-enable-leader-election needs Kubernetes (--pool-name or --endpoint-selector), "
            "where the leader holds a Lease; with --endpoints-file run one replica"
        )
    sources = [args.pool_name, args.endpoint_selector, args.endpoints_file]
    if sum(1 for source in sources if source) != 1:
        parser.error(
            "exactly one of --pool-name, --endpoint-selector (standalone mode) and "
            "--endpoints-file (no Kubernetes) must be set"
        )
    ports = list(dict.fromkeys(p for group in args.endpoint_target_ports for p in group))
    if args.endpoint_selector and not 1 <= len(ports) <= MAX_TARGET_PORTS:
        parser.error(f"--endpoint-target-ports should have from 1 to {MAX_TARGET_PORTS} ports")
    if args.objective and not args.endpoints_file:
        parser.error("--objective is for --endpoints-file; on Kubernetes use InferenceObjectives")


def _objectives(parser: argparse.ArgumentParser, items: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, _, priority = item.partition("=")
        if not name or not priority.lstrip("-").isdigit():
            parser.error(f"--objective expects NAME=PRIORITY (an integer), got {item!r}")
        out[name] = int(priority)
    return out


def _metrics_source_flags(args: argparse.Namespace) -> dict[str, object]:
    """The deprecated `--model-server-metrics-*` flags given, as metrics-data-source params."""
    given = {
        "scheme": args.model_server_metrics_scheme,
        "path": args.model_server_metrics_path,
        "insecureSkipVerify": args.model_server_metrics_https_insecure_skip_verify,
    }
    return {name: value for name, value in given.items() if value is not None}


def _pool_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> PoolOptions | None:
    """Where a Kubernetes EPP finds its pool; None in file mode."""
    if args.endpoints_file:
        return None
    namespace = args.pool_namespace or os.environ.get("NAMESPACE") or "default"
    metrics_port = args.model_server_metrics_port or None
    if args.pool_name:
        return PoolOptions(args.pool_name, namespace, args.pool_group, metrics_port=metrics_port)
    try:
        name = deployment_name(os.environ.get("POD_NAME", ""))
    except ValueError as e:
        parser.error(f"--endpoint-selector: {e}")
    ports = tuple(dict.fromkeys(p for group in args.endpoint_target_ports for p in group))
    return PoolOptions(
        name, namespace, args.pool_group, selector=args.endpoint_selector, target_ports=ports,
        metrics_port=metrics_port,
    )  # fmt: skip


def parse_args(argv: Sequence[str]) -> tuple[EppOptions, argparse.Namespace]:
    """Options from command-line arguments; exits with a usage message on a bad flag."""
    args_in = go_style_argv(argv)
    parser = _parser()
    args = parser.parse_args(args_in)
    _refuse(parser, args)
    ports = [args.grpc_port, args.grpc_health_port, args.metrics_port]
    if not distinct_ports(ports):
        parser.error(f"ports must differ, got {ports}")
    options = EppOptions(
        grpc_port=args.grpc_port, grpc_health_port=args.grpc_health_port,
        metrics_port=args.metrics_port, host=args.host, secure_serving=args.secure_serving,
        cert_path=args.cert_path, cert_reload=args.enable_cert_reload,
        health_checking=args.health_checking,
        grace_s=args.grace_period, shutdown_delay_s=args.shutdown_delay,
        disable_endpoint_subset_filter=args.disable_endpoint_subset_filter,
        refresh_metrics_interval_s=args.refresh_metrics_interval,
        metrics_staleness_threshold_s=args.metrics_staleness_threshold,
        config_file=args.config_file, config_text=_config_text(args),
        endpoints_file=args.endpoints_file, objectives=_objectives(parser, args.objective),
        pool=_pool_options(parser, args),
        tracing=args.tracing, response_sample_rate=args.response_sample_rate,
        leader_election=args.ha_enable_leader_election,
        metrics_endpoint_auth=args.metrics_endpoint_auth,
        metrics_source_flags=_metrics_source_flags(args), worker=_worker(parser, args),
    )  # fmt: skip
    return options, args


def _worker(parser: argparse.ArgumentParser, args: argparse.Namespace) -> WorkerRole | None:
    """Which worker this process is, when a `--workers` parent started it."""
    if args.worker_index is None:
        return None
    if args.worker_dir is None or not 0 <= args.worker_index < args.workers:
        parser.error("--worker-index needs --worker-dir and an index below --workers")
    return WorkerRole(args.worker_index, args.workers, args.worker_dir)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ADMIN_COMMANDS:
        return admin_main(argv)
    options, args = parse_args(argv)
    verbosity, json_format = logging_choice(args)
    configure_logging(verbosity, json_format=json_format)
    if args.workers > 1 and options.worker is None:
        directory, port = args.worker_dir, args.metrics_port
        return Supervisor(argv, args.workers, directory=directory, metrics_port=port).run()
    if options.worker is not None:
        die_with_parent()
    try:
        serve(EppService(options))
    except (ConfigError, StaticDiscoveryError) as e:
        _log.error("epp configuration rejected", error=str(e))
        return 2
    except (ValueError, OSError, RuntimeError) as e:
        _log.error("epp failed to start", error=str(e))
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
