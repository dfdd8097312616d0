"""`make run`'s local gateway, end to end: real Envoy, the BBR as its own process, backends.

The first tests drive `LocalGateway` on free ports; the last runs the `igw-local run` command
itself, as `make run` does, and stops it with Ctrl-C (SIGINT).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from igw.e2e.gateway import GatewayPorts, LocalGateway

pytestmark = pytest.mark.envoy


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[LocalGateway]:
    gw = LocalGateway(GatewayPorts.free(), tmp_path)
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def _complete(url: str, model: str) -> tuple[int, Any]:
    body = {"model": model, "prompt": "Say hello"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v1/completions", json=body) as response,
    ):
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


@pytest.mark.parametrize(
    ("model", "backend"),
    [
        pytest.param("a", "a", id="model-a"),
        pytest.param("b", "b", id="model-b"),
        pytest.param("a-lora-1", "a", id="adapter-of-a"),
    ],
)
async def test_models_land_on_their_backends(
    gateway: LocalGateway, model: str, backend: str
) -> None:
    status, answer = await _complete(gateway.url, model)
    assert status == 200
    assert answer["served_by"] == backend


async def test_unknown_model_gets_404_naming_the_header(gateway: LocalGateway) -> None:
    status, text = await _complete(gateway.url, "no-such-model")
    assert status == 404
    assert "x-gateway-model-name" in text


async def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    gw = LocalGateway(GatewayPorts.free(), tmp_path)
    await gw.start()
    assert gw.envoy is not None
    envoy_pid = gw.envoy.pid
    bbr = gw.bbr.process
    assert envoy_pid is not None
    assert bbr is not None
    await gw.stop()
    assert bbr.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.kill(envoy_pid, 0)
    for port in (gw.ports.listen, gw.ports.bbr_grpc, gw.ports.backend_a):
        assert not _listening(port)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_banner(process: subprocess.Popen[str], timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    seen = []
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if "Stop with Ctrl-C" in line:
            return "".join(seen)
    raise AssertionError("igw-local never printed its banner:\n" + "".join(seen))


def test_igw_local_run_serves_and_stops_on_ctrl_c(free_port_factory: Any) -> None:
    port = free_port_factory()
    process = subprocess.Popen(
        [sys.executable, "-m", "igw.e2e.cli", "run", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = _wait_for_banner(process, timeout_s=60)
        assert f"http://127.0.0.1:{port}" in banner
        assert "curl" in banner
        served = {model: _post(port, model)["served_by"] for model in ("a", "b")}
        assert served == {"a": "a", "b": "b"}
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert not _listening(port)
    assert not _listening(GatewayPorts().bbr_grpc)


def _post(port: int, model: str) -> dict[str, Any]:
    data = json.dumps({"model": model, "prompt": "hi"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=data)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        answer: dict[str, Any] = json.loads(response.read())
        return answer
