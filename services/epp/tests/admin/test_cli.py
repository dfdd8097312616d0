"""`igw-epp endpoints` / `igw-epp explain`: arguments, bodies, and the tables against a server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from igw.epp.admin.cli import admin_main, build_body, parse_headers, read_body
from igw.epp.testing.admin_fleet import MODEL


@pytest.mark.parametrize(
    ("path", "field", "value"),
    [
        pytest.param("/v1/chat/completions", "messages", [{"role": "user", "content": "hi"}],
                     id="chat"),
        pytest.param("/v1/completions", "prompt", "hi", id="completions"),
        pytest.param("/v1/embeddings", "input", "hi", id="embeddings"),
    ],
)  # fmt: skip
def test_build_body_follows_the_paths_api_type(path: str, field: str, value: object) -> None:
    assert json.loads(build_body(path, MODEL, "hi")) == {"model": MODEL, field: value}


def test_build_body_without_a_model_leaves_it_out() -> None:
    """So `explain` shows the EPP's 400 for a body without a model."""
    assert "model" not in json.loads(build_body("/v1/completions", "", "hi"))


def test_headers_are_lower_cased_and_need_a_colon() -> None:
    assert parse_headers(["X-Request-Id: r1", "a:b:c"]) == {"x-request-id": "r1", "a": "b:c"}
    with pytest.raises(ValueError, match="NAME: VALUE"):
        parse_headers(["no-colon"])


def test_body_from_text_or_file(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_bytes(b'{"model": "m"}')

    assert read_body(f"@{path}") == b'{"model": "m"}'
    assert read_body('{"x": 1}') == b'{"x": 1}'
    with pytest.raises(ValueError, match="cannot read body file"):
        read_body(f"@{tmp_path / 'missing.json'}")


async def run(argv: list[str]) -> int:
    # The CLI runs its own event loop; the server keeps the test's.
    return await asyncio.to_thread(admin_main, argv)


async def test_endpoints_command_prints_the_table(
    address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = await run(["endpoints", "--admin-address", address])

    out = capsys.readouterr().out
    assert status == 0
    assert out.splitlines()[0].split()[:3] == ["NAME", "ADDRESS", "WAITING"]
    assert "pod-c-rank-0  10.0.0.3:8000" in out


async def test_explain_command_prints_the_pick(
    address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explain", "--admin-address", address, "--model", MODEL, "--prompt", "hello",
            "-H", "x-request-id: cli-1"]  # fmt: skip

    status = await run(argv)

    out = capsys.readouterr().out
    assert status == 0
    assert out.startswith(f"request cli-1: model {MODEL}, priority 0, 3 candidates")
    assert "pick: pod-c-rank-0" in out


async def test_an_unreachable_epp_is_a_clear_error(
    unused_tcp_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    status = await run(["endpoints", "--admin-address", f"127.0.0.1:{unused_tcp_port}"])

    assert status == 1
    assert f"127.0.0.1:{unused_tcp_port}: UNAVAILABLE" in capsys.readouterr().err
