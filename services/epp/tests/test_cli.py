"""`igw-epp` flags: upstream's defaults, refused flags with a message saying what to do."""

from pathlib import Path

import pytest

from igw.epp.cli import parse_args
from igw.epp.config import PROFILES
from igw.epp.discovery import (
    DEFAULT_POOL_GROUP,
    LEGACY_POOL_GROUP,
    PoolOptions,
    PoolSpec,
)

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
    assert not options.leader_election
    assert options.metrics_endpoint_auth  # upstream's default: TokenReview + SubjectAccessReview
    assert options.worker is None  # --workers 1: one process, exactly as before


def test_a_worker_started_by_the_parent_knows_its_role() -> None:
    options, args = parse_args(
        ["--workers", "3", "--worker-index", "2", "--worker-dir", "/run/w", *FILE]
    )
    assert args.workers == 3
    assert options.worker is not None
    assert (options.worker.index, options.worker.count) == (2, 3)
    assert options.worker.directory == Path("/run/w")
    assert not options.worker.scraper


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


def test_a_named_profile_is_its_shipped_config() -> None:
    options, _ = parse_args([*FILE, "--config-profile", "learned-latency"])
    assert options.config_text == PROFILES["learned-latency"]
    assert parse_args(FILE)[0].config_text is None  # no flag: upstream's default profile


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
        pytest.param(["--pool-name", "p", *FILE], "exactly one of --pool-name",
                     id="pool-and-file"),
        pytest.param(["--pool-name", "p", "--endpoint-selector", "app=x",
                      "--endpoint-target-ports", "8000"], "exactly one of", id="pool-and-selector"),
        pytest.param(["--endpoint-selector", "app=x"], "from 1 to 8 ports", id="selector-no-ports"),
        pytest.param(["--endpoint-selector", "app=x", "--endpoint-target-ports",
                      "1,2,3,4,5,6,7,8,9"], "from 1 to 8 ports", id="nine-ports"),
        pytest.param(["--endpoint-selector", "app", "--endpoint-target-ports", "8000"],
                     "KEY=VALUE", id="selector-without-value"),
        pytest.param(["--endpoint-selector", "a=b", "--endpoint-target-ports", "70000"],
                     "invalid port number", id="port-out-of-range"),
        pytest.param(["--pool-name", "p", "--objective", "a=1"], "use InferenceObjectives",
                     id="objective-flag-on-kubernetes"),
        pytest.param(["--total-queued-requests-metric", "x", *FILE], "was removed upstream",
                     id="removed-metric-flag"),
        pytest.param([], "exactly one of --pool-name", id="no-endpoints"),
        pytest.param(["--config-file", "a", "--config-text", "b", *FILE], "not allowed with",
                     id="config-exclusive"),
        pytest.param(["--config-profile", "learned-latency", "--config-text", "b", *FILE],
                     "not allowed with", id="profile-exclusive"),
        pytest.param(["--config-profile", "fastest", *FILE], "invalid choice",
                     id="unknown-profile"),
        pytest.param(["--grpc-port", "9003", *FILE], "ports must differ", id="same-ports"),
        pytest.param(["--objective", "x=high", *FILE], "NAME=PRIORITY", id="bad-objective"),
        pytest.param(["--response-sample-rate", "1.5", *FILE], "a number from 0 to 1",
                     id="sample-rate-above-1"),
        pytest.param(["--response-sample-rate", "some", *FILE], "a number from 0 to 1",
                     id="sample-rate-not-a-number"),
        pytest.param(["--ha-enable-leader-election", *FILE], "needs Kubernetes",
                     id="leader-election-without-kubernetes"),
        pytest.param(["--workers", "0", *FILE], "from 1 to 64", id="no-workers"),
        pytest.param(["--workers", "two", *FILE], "from 1 to 64", id="workers-not-a-number"),
        pytest.param(["--workers", "2", "--worker-index", "2", "--worker-dir", "d", *FILE],
                     "an index below --workers", id="worker-index-out-of-range"),
        pytest.param(["--worker-index", "0", *FILE], "needs --worker-dir",
                     id="worker-index-without-dir"),
    ],
)  # fmt: skip
def test_refused(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_pool_flags_as_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMESPACE", "from-env")
    options, _ = parse_args(["--pool-name", "llama", "--model-server-metrics-port", "9100"])
    assert options.pool == PoolOptions("llama", "from-env", DEFAULT_POOL_GROUP, metrics_port=9100)
    options, _ = parse_args(
        ["--pool-name", "llama", "--pool-namespace", "serving", "--pool-group", LEGACY_POOL_GROUP]
    )
    assert options.pool == PoolOptions("llama", "serving", LEGACY_POOL_GROUP)
    monkeypatch.delenv("NAMESPACE")
    options, _ = parse_args(["--pool-name", "llama"])
    assert options.pool is not None
    assert options.pool.namespace == "default"
    assert options.endpoints_file is None


def test_standalone_mode_names_the_pool_after_the_deployment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POD_NAME", "llama-epp-7d9f8b6c4d-x2k9p")
    options, _ = parse_args(
        ["--endpoint-selector", "app=vllm, tier=gpu", "--endpoint-target-ports", "8000,8001",
         "--endpoint-target-ports", "8001", "--pool-namespace", "ns"]
    )  # fmt: skip
    assert options.pool is not None
    assert options.pool.name == "llama-epp"
    assert options.pool.standalone == PoolSpec(
        "llama-epp", "ns", {"app": "vllm", "tier": "gpu"}, (8000, 8001)
    )


def test_standalone_mode_needs_the_pod_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POD_NAME", raising=False)
    with pytest.raises(SystemExit):
        parse_args(["--endpoint-selector", "app=vllm", "--endpoint-target-ports", "8000"])
    assert "POD_NAME" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--pool-name", "llama"], id="pool"),
        pytest.param(["--endpoint-selector", "app=vllm", "--endpoint-target-ports", "8000"],
                     id="standalone"),
    ],
)  # fmt: skip
@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        pytest.param("--ha-enable-leader-election", True, id="on"),
        pytest.param("--ha-enable-leader-election=false", False, id="off"),
    ],
)
def test_leader_election_is_accepted_on_kubernetes(
    argv: list[str], flag: str, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POD_NAME", "llama-epp-7d9f8b6c4d-x2k9p")
    options, _ = parse_args([*argv, flag])
    assert options.leader_election is expected


def test_upstream_logging_and_pprof_flags_are_accepted() -> None:
    _, args = parse_args(
        [*FILE, "--zap-devel=false", "--zap-log-level=debug", "--zap-time-encoding=rfc3339",
         "--zap-stacktrace-level=panic", "--enable-pprof=false"]
    )  # fmt: skip
    assert not args.enable_pprof
    _, defaults = parse_args(FILE)
    assert defaults.enable_pprof  # upstream's default; Go's pprof has no counterpart here


@pytest.mark.parametrize(
    ("argv", "grace_s", "delay_s"),
    [
        pytest.param([], 25.0, 0.0, id="defaults: 25 s drain, no delay"),
        pytest.param(["--grace-period=40", "--shutdown-delay=3s"], 40.0, 3.0, id="set"),
    ],
)
def test_graceful_stop_flags(argv: list[str], grace_s: float, delay_s: float) -> None:
    opts, _ = parse_args(["--endpoints-file=x.yaml", *argv])
    assert (opts.grace_s, opts.shutdown_delay_s) == (grace_s, delay_s)
