"""`igw-local run`'s tuning flags: bad values and files are usage errors naming them, and good
ones reach the processes they are for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from igw.e2e import cli
from igw.e2e.gateway import GatewayPorts, LocalGateway

EPP_CONFIG = """\
apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
featureGates: ["flowControl"]
"""


def _usage_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["run", *args])
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("critical", id="no-priority"),
        pytest.param("critical=high", id="priority-not-an-integer"),
        pytest.param("critical=1.5", id="priority-not-whole"),
        pytest.param("=10", id="no-name"),
    ],
)
def test_a_bad_objective_is_refused_naming_it(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error(capsys, "--objective", "batch=0", "--objective", value)
    assert f"argument --objective: expected NAME=PRIORITY (an integer), got {value!r}" in err


@pytest.mark.parametrize(
    ("flag", "content", "message"),
    [
        pytest.param(
            "--epp-config", None, "missing.yaml: cannot read config file missing.yaml: No such",
            id="epp-config-missing",
        ),
        pytest.param(
            "--epp-config", EPP_CONFIG + "plugins: [{type: no-such-scorer}]\n",
            "no-such-scorer", id="epp-config-unknown-plugin",
        ),
        pytest.param(
            "--epp-config", EPP_CONFIG + "flowControl: {maxRequests: lots}\n",
            "flowControl.maxRequests", id="epp-config-bad-flow-control",
        ),
        pytest.param(
            "--sim-config", None, "missing.yaml: cannot read it: No such file or directory",
            id="sim-config-missing",
        ),
        pytest.param(
            "--sim-config", "pods: 8\nport: 9000\n", "pods, port: the local pool's layout is fixed",
            id="sim-config-changes-the-layout",
        ),
        pytest.param(
            "--sim-config", "max-num-seqs: 0\n", "max-num-seqs: expected 1 or more, got 0",
            id="sim-config-bad-value",
        ),
        pytest.param(
            "--sim-config", "max-num-sequences: 2\n", "unknown option 'max-num-sequences'",
            id="sim-config-unknown-option",
        ),
        pytest.param(
            "--sim-config", "- max-num-seqs: 2\n", "expected a mapping of option names",
            id="sim-config-not-a-mapping",
        ),
    ],
)  # fmt: skip
def test_a_bad_file_is_refused_naming_it_and_the_problem(  # noqa: PLR0917 - table + fixtures
    flag: str,
    content: str | None,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    if content is not None:
        Path("missing.yaml").write_text(content)
    err = _usage_error(capsys, flag, "missing.yaml")
    assert f"argument {flag}: missing.yaml: " in err
    assert message in err


def test_the_flags_reach_the_epp_and_the_simulator(tmp_path: Path) -> None:
    config = tmp_path / "epp.yaml"
    config.write_text(EPP_CONFIG)
    gateway = LocalGateway(
        GatewayPorts(),
        tmp_path,
        epp_config=config,
        objectives={"critical": 10, "batch": -1},
        sim_options={"max-num-seqs": 2},
    )
    argv = gateway.epp.argv
    assert f"--config-file={config}" in argv
    assert argv[-2:] == ["--objective=critical=10", "--objective=batch=-1"]
    assert gateway.sim_options == {"max-num-seqs": 2}


def test_without_flags_the_epp_runs_its_defaults(tmp_path: Path) -> None:
    gateway = LocalGateway(GatewayPorts(), tmp_path)
    assert not [arg for arg in gateway.epp.argv if arg.startswith(("--config", "--objective"))]
    assert _epp_response_body_mode(gateway) == "STREAMED"  # lean


def test_the_compatible_response_mode_shows_the_epp_every_body(tmp_path: Path) -> None:
    gateway = LocalGateway(GatewayPorts(), tmp_path, response_mode="compatible")
    assert _epp_response_body_mode(gateway) == "FULL_DUPLEX_STREAMED"


def _epp_response_body_mode(gateway: LocalGateway) -> str:
    """The EPP's ext_proc filter's response body mode in the gateway's Envoy config."""
    [epp] = re.findall(r'"ext_proc\.epp".*?"response_body_mode": "(\w+)"', json.dumps(
        gateway.envoy_config()
    ))  # fmt: skip
    return str(epp)
