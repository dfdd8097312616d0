"""igw.bbr.cli: upstream's flags and defaults, Go-style booleans and clear usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from igw.bbr.cli import parse_args
from igw.bbr.registry import DEFAULT_PLUGINS, PluginSpec
from igw.bbr.server import BbrOptions
from igw.common.cli import logging_choice


def options(*argv: str) -> BbrOptions:
    return parse_args(argv)[0]


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The `igw-bbr: error: ...` line argparse prints before exiting with status 2."""
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("usage: igw-bbr")
    return stderr.strip().splitlines()[-1]


def test_defaults_are_upstreams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NAMESPACE", raising=False)
    opts, args = parse_args([])
    assert opts == BbrOptions(
        grpc_port=9004,
        grpc_health_port=9005,
        metrics_port=9090,
        host="0.0.0.0",
        streaming=False,
        secure_serving=True,
        cert_path=None,
        plugins=DEFAULT_PLUGINS,
        adapters_file=None,
        kubernetes="auto",
        namespace=None,
        tracing=True,
        metrics_endpoint_auth=True,
        serve_models_endpoint=True,  # igw's own: the BBR answers GET /v1/models
        grace_s=25.0,  # igw's own graceful stop: fits Kubernetes' default 30 s with room
    )
    assert args.verbosity == 2
    assert args.enable_pprof  # accepted, as upstream's default
    assert logging_choice(args) == (2, False)  # --zap-devel (default): console logs


@pytest.mark.parametrize(
    ("argv", "attr", "expected"),
    [
        pytest.param(["--streaming"], "streaming", True, id="bare-flag-is-true"),
        pytest.param(["--streaming=true"], "streaming", True, id="equals-true"),
        pytest.param(["--streaming=false"], "streaming", False, id="equals-false"),
        pytest.param(["--streaming=1"], "streaming", True, id="one"),
        pytest.param(["--streaming=0"], "streaming", False, id="zero"),
        pytest.param(["--streaming=T"], "streaming", True, id="go-short-T"),
        pytest.param(["--streaming=FALSE"], "streaming", False, id="upper-case"),
        pytest.param(["--secure-serving=false"], "secure_serving", False, id="insecure"),
        pytest.param(["--secure-serving"], "secure_serving", True, id="secure-bare"),
        pytest.param(["--tracing=false"], "tracing", False, id="no-tracing"),
        pytest.param(
            ["--metrics-endpoint-auth=false"], "metrics_endpoint_auth", False, id="metrics-auth-off"
        ),
        pytest.param(["--metrics-endpoint-auth"], "metrics_endpoint_auth", True, id="metrics-auth"),
        pytest.param(["--streaming", "--streaming=f"], "streaming", False, id="last-wins"),
        pytest.param(
            ["--serve-models-endpoint=false"], "serve_models_endpoint", False, id="models-off"
        ),
    ],
)
def test_go_style_booleans(argv: list[str], attr: str, expected: bool) -> None:
    assert getattr(options(*argv), attr) is expected


def test_bare_boolean_does_not_swallow_the_next_flag() -> None:
    opts = options("--streaming", "--grpc-port", "9100")
    assert (opts.streaming, opts.grpc_port) == (True, 9100)


@pytest.mark.parametrize(
    ("argv", "verbosity"),
    [
        pytest.param(["-v=3"], 3, id="go-short-equals"),
        pytest.param(["--v=4"], 4, id="long-equals"),
        pytest.param(["-v", "5"], 5, id="short-space"),
        pytest.param(["--v", "1"], 1, id="long-space"),
    ],
)
def test_verbosity_flag_forms(argv: list[str], verbosity: int) -> None:
    assert parse_args(argv)[1].verbosity == verbosity


def test_every_option_reaches_bbr_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMESPACE", "team-a")
    opts = options(
        "--grpc-port=9100",
        "--grpc-health-port=9101",
        "--metrics-port=9102",
        "--host=127.0.0.1",
        "--cert-path=/etc/certs",
        "--adapters-file=adapters.yaml",
        "--kubernetes=off",
        "--plugin",
        "base-model-to-header:base",
        "--plugin",
        'body-field-to-header:user:{"fieldName":"user","headerName":"x-user"}',
    )
    assert (opts.grpc_port, opts.grpc_health_port, opts.metrics_port) == (9100, 9101, 9102)
    assert opts.host == "127.0.0.1"
    assert opts.cert_path == Path("/etc/certs")
    assert opts.adapters_file == Path("adapters.yaml")
    assert opts.kubernetes == "off"
    assert opts.namespace == "team-a"
    # Plugins replace the defaults and keep the order they were given in.
    assert opts.plugins == (
        PluginSpec("base-model-to-header", "base", {}),
        PluginSpec("body-field-to-header", "user", {"fieldName": "user", "headerName": "x-user"}),
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["--grpc-port=9005"], "ports must differ, got [9005, 9005, 9090]", id="grpc=health"
        ),
        pytest.param(
            ["--metrics-port=9004"], "ports must differ, got [9004, 9005, 9004]", id="grpc=metrics"
        ),
        pytest.param(["--metrics-port=-1"], "port must be 0-65535, got -1", id="port-negative"),
        pytest.param(["--grpc-port=65536"], "port must be 0-65535, got 65536", id="port-too-big"),
        pytest.param(
            ["--grpc-port=http"],
            "port must be a number 0-65535, got 'http'",
            id="port-not-a-number",
        ),
        pytest.param(["--streaming=yes"], "expected true or false, got 'yes'", id="bad-bool"),
        pytest.param(
            ["--plugin", "body-field-to-header"],
            "--plugin 'body-field-to-header': expected TYPE:NAME or TYPE:NAME:JSON",
            id="plugin-without-name",
        ),
        pytest.param(
            ["--plugin", "body-field-to-header:m:{fieldName}"],
            "--plugin 'body-field-to-header:m:{fieldName}': parameters are not valid JSON",
            id="plugin-bad-json",
        ),
        pytest.param(
            ["--plugin", "body-field-to-header:m:[1]"],
            "parameters must be a JSON object",
            id="plugin-json-not-object",
        ),
        pytest.param(["--kubernetes=maybe"], "invalid choice: 'maybe'", id="kubernetes-mode"),
    ],
)
def test_bad_flags_exit_with_a_clear_usage_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    line = usage_error(capsys, *argv)
    assert line.startswith("igw-bbr: error: ")
    assert message in line


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--enable-pprof"], id="pprof-on"),
        pytest.param(["--enable-pprof=false"], id="pprof-off"),
        pytest.param(["--zap-encoder=console"], id="console-logs"),
        pytest.param(
            [
                "--zap-devel=false",
                "--zap-log-level=debug",
                "--zap-time-encoding=iso8601",
                "--zap-stacktrace-level=error",
            ],
            id="zap-family",
        ),
    ],
)
def test_upstream_compatibility_flags_are_accepted(argv: list[str]) -> None:
    assert options(*argv).grpc_port == 9004


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param([], (2, False), id="upstream-default-console"),
        pytest.param(["--zap-encoder=json"], (2, True), id="charts-json"),
        pytest.param(["--zap-devel=false"], (2, True), id="production-json"),
        pytest.param(["-v=4", "--zap-log-level=info"], (0, False), id="zap-level-wins"),
        pytest.param(["--zap-log-level=3"], (3, False), id="numeric-level"),
    ],
)
def test_logging_flags_choose_level_and_format(argv: list[str], expected: tuple[int, bool]) -> None:
    _, args = parse_args(["--kubernetes=off", "--metrics-endpoint-auth=false", *argv])
    assert logging_choice(args) == expected


def test_graceful_stop_flags() -> None:
    opts = options("--grace-period=10s", "--shutdown-delay=500ms", "--health-checking")
    assert (opts.grace_s, opts.shutdown_delay_s, opts.health_checking) == (10.0, 0.5, True)


def test_a_negative_grace_period_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert "expected a duration" in usage_error(capsys, "--grace-period=-1s")
