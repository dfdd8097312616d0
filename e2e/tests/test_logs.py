"""The local gateway's log files stay bounded (issue 13 item 5): rotated past a size limit while
their writers keep writing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from igw.e2e import logs
from igw.epp.testing.waiting import wait_until


def test_a_log_over_its_limit_moves_aside_and_its_writer_goes_on_at_the_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "envoy.log"
    with path.open("ab") as writer:  # as a child's stdout: O_APPEND
        writer.write(b"old line\n" * 200)
        writer.flush()
        assert not logs.rotate(path, limit_bytes=10_000)  # 1,800 bytes: under the limit
        writer.write(b"old line\n" * 2000)
        writer.flush()
        assert logs.rotate(path, limit_bytes=10_000)
        writer.write(b"new line\n")
        writer.flush()
    assert path.read_bytes() == b"new line\n"  # not a sparse file grown to the old size
    assert (tmp_path / "envoy.log.1").read_bytes() == b"old line\n" * 2200
    assert not logs.rotate(tmp_path / "missing.log")


async def test_the_gateway_task_rotates_a_growing_log(tmp_path: Path) -> None:
    path = tmp_path / "child.log"
    rotated = tmp_path / "child.log.1"
    rotating = asyncio.create_task(logs.keep_rotated(lambda: [path], 100_000, every_s=0.01))
    try:
        with path.open("ab") as writer:
            writer.write(b"y" * 200_000)
            writer.flush()
            await wait_until(rotated.exists, timeout_s=60)
            writer.write(b"after\n")
            writer.flush()
    finally:
        rotating.cancel()
    assert rotated.stat().st_size == 200_000
    assert path.read_bytes() == b"after\n"
