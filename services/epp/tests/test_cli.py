"""`igw-epp` flags: upstream's defaults, refused flags with a message saying what to do."""

from pathlib import Path

import pytest

from igw.epp.cli import parse_args

FILE = ["--endpoints-file", "eps.yaml"]


def test_upstream_defaults() -> None:
    options, _ = parse_args(FILE)
    assert (options.grpc_port, options.grpc_health_port, options.metrics_port) == (9002, 9003, 9090)
    assert options.refresh_metrics_interval_s == 0.05
    assert options.metrics_staleness_threshold_s == 2.0
    assert options.secure_serving
    assert options.tracing
    assert not options.health_checking
    assert not options.disable_endpoint_subset_filter
    assert options.endpoints_file == Path("eps.yaml")
    assert options.response_sample_rate == 0.0  # lean mode reads no body it does not need
    assert not options.cert_reload
    assert options.metrics_source_flags == {}


def test_go_style_values() -> None:
    options, args = parse_args(
        [*FILE, "--secure-serving=false", "--refresh-metrics-interval", "100ms",
         "--disable-endpoint-subset-filter", "-v=4", "--objective", "batch=-1",
         "--response-sample-rate", "0.25", "--cert-path", "/certs", "--enable-cert-reload=true"]
    )  # fmt: skip
    assert not options.secure_serving
    assert options.refresh_metrics_interval_s == pytest.approx(0.1)
    assert options.disable_endpoint_subset_filter
    assert args.verbosity == 4
    assert options.objectives == {"batch": -1}
    assert options.response_sample_rate == 0.25
    assert (options.cert_path, options.cert_reload) == (Path("/certs"), True)


def test_deprecated_metrics_flags_become_source_params() -> None:
    options, _ = parse_args(
        [*FILE, "--model-server-metrics-scheme=https", "--model-server-metrics-path", "/m",
         "--model-server-metrics-https-insecure-skip-verify=false"]
    )  # fmt: skip
    assert options.metrics_source_flags == {
        "scheme": "https", "path": "/m", "insecureSkipVerify": False,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--pool-name", "p", *FILE], "Kubernetes discovery is not implemented yet",
                     id="pool-name"),
        pytest.param(["--total-queued-requests-metric", "x", *FILE], "was removed upstream",
                     id="removed-metric-flag"),
        pytest.param([], "--endpoints-file is required", id="no-endpoints"),
        pytest.param(["--config-file", "a", "--config-text", "b", *FILE], "not allowed with",
                     id="config-exclusive"),
        pytest.param(["--grpc-port", "9003", *FILE], "ports must differ", id="same-ports"),
        pytest.param(["--objective", "x=high", *FILE], "NAME=PRIORITY", id="bad-objective"),
        pytest.param(["--response-sample-rate", "1.5", *FILE], "a number from 0 to 1",
                     id="sample-rate-above-1"),
        pytest.param(["--response-sample-rate", "some", *FILE], "a number from 0 to 1",
                     id="sample-rate-not-a-number"),
    ],
)  # fmt: skip
def test_refused(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err
