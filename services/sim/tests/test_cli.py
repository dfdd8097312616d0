"""igw.sim.cli: llm-d's flag names, the YAML file equal to the flags, usage errors, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from igw.sim.cli import parse_args
from igw.sim.config import LoraModule, SimConfig

FLAGS = [
    "--port", "9100",
    "--model", "meta-llama/Llama-3.1-8B-Instruct",
    "--served-model-name", "llama",
    "--preset", "tiny",
    "--max-num-seqs", "8",
    "--max-waiting-queue-length", "20",
    "--max-model-len", "2048",
    "--kv-cache-size", "256",
    "--block-size", "32",
    "--max-loras", "2",
    "--lora-modules", "sql=/a/sql", '{"name": "chat", "path": "/a/chat"}',
    "--data-parallel-size", "2",
    "--failure-injection-rate", "5",
    "--failure-types", "rate_limit", "server_error",
    "--seed", "42",
    "--time-scale", "10",
    "--startup-duration", "2s",
    "--pods", "2",
    "--host", "127.0.0.1",
]  # fmt: skip

YAML = """\
port: 9100
model: meta-llama/Llama-3.1-8B-Instruct
served-model-name: llama
preset: tiny
max-num-seqs: 8
max_waiting_queue_length: 20
max-model-len: 2048
kv-cache-size: 256
block-size: 32
max-loras: 2
lora-modules: [sql=/a/sql, {name: chat, path: /a/chat}]
data-parallel-size: 2
failure-injection-rate: 5
failure-types: [rate_limit, server_error]
seed: 42
time-scale: 10
startup-duration: 2s
pods: 2
host: 127.0.0.1
"""


@pytest.fixture(autouse=True)
def no_pod_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POD_NAME", raising=False)


def config(*argv: str) -> SimConfig:
    return parse_args(argv)[0]


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The `igw-sim: error: ...` line argparse prints before exiting with status 2."""
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_flags_reach_every_pod(tmp_path: Path) -> None:
    flagged = config(*FLAGS)
    assert [pod.port for pod in flagged.pods] == [9100, 9102]
    pod = flagged.pods[0]
    assert (pod.max_num_seqs, pod.max_waiting_queue_length, pod.num_gpu_blocks) == (8, 20, 256)
    assert pod.lora_modules == (LoraModule("sql", "/a/sql"), LoraModule("chat", "/a/chat"))
    assert pod.failure_types == ("rate_limit", "server_error")
    assert (pod.startup_delay, pod.time_scale, pod.data_parallel_size) == (2.0, 10.0, 2)


def test_the_yaml_file_equals_the_flags(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(YAML, encoding="utf-8")
    assert config("--config", str(path)) == config(*FLAGS)


def test_flags_win_over_the_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(YAML, encoding="utf-8")
    overridden = config("--config", str(path), "--max-num-seqs", "3", "--pods", "1")
    assert [(pod.max_num_seqs, pod.seed) for pod in overridden.pods] == [(3, 42)]


def test_plan_comes_with_the_config() -> None:
    _, plans = parse_args(["--preset", "tiny", "--pods", "2", "--data-parallel-size", "2"])
    assert [p.settings.port for p in plans] == [8000, 8001, 8002, 8003]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--max-num-seqs", "0"], "--max-num-seqs: expected 1 or more", id="zero"),
        pytest.param(["--port", "x"], "--port: ", id="port-not-a-number"),
        pytest.param(["--failure-types", "boom"], "unknown failure types", id="failure-type"),
        pytest.param(["--failure-injection-rate", "150"], "failure-injection-rate", id="rate"),
        pytest.param(["--preset", "gpt-9"], "unknown preset 'gpt-9'", id="preset"),
        pytest.param(["--config", "/nonexistent.yaml"], "No such file", id="missing-config"),
        pytest.param(["--tracing=maybe"], "expected true or false", id="bad-boolean"),
        pytest.param(
            ["--preset", "tiny", "--max-model-len", "99999"], "max_model_len", id="engine-check"
        ),
    ],
)
def test_usage_errors_name_the_option(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    line = usage_error(capsys, *argv)
    assert line.startswith("igw-sim: error: ")
    assert message in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param([], True, id="default-on"),
        pytest.param(["--tracing"], True, id="bare"),
        pytest.param(["--tracing=false"], False, id="off"),
    ],
)
def test_tracing_flag(argv: list[str], expected: bool) -> None:
    assert config(*argv).tracing is expected


async def test_the_process_serves_after_its_startup_delay_and_stops_on_sigterm() -> None:
    argv = [
        "--port",
        "0",
        "--preset",
        "tiny",
        "--startup-delay",
        "0.5",
        "--host",
        "127.0.0.1",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "igw.sim.cli", *argv,
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        port = await asyncio.wait_for(_serving_port(process), timeout=60)
        statuses = await health_until_ok(f"http://127.0.0.1:{port}/health")
        assert statuses[0] == 503, "not ready during the startup delay"
        assert statuses[-1] == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _serving_port(process: asyncio.subprocess.Process) -> int:
    """The port the simulator bound for `--port 0`, from its JSON `pod serving` log line."""
    assert process.stderr is not None
    async for line in process.stderr:
        if line.startswith(b"{") and (event := json.loads(line)).get("event") == "pod serving":
            return int(event["port"])
    raise AssertionError(f"the simulator exited ({await process.wait()}) without serving")


async def health_until_ok(url: str) -> list[int]:
    """Every status `url` answered, polling from the first answer until a 200."""
    statuses: list[int] = []
    deadline = time.monotonic() + 15
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    statuses.append(response.status)
            except aiohttp.ClientConnectionError:
                pass  # not listening yet
            if statuses and statuses[-1] == 200:
                return statuses
            await asyncio.sleep(0.02)
    raise TimeoutError(f"{url} never answered 200: {statuses}")
