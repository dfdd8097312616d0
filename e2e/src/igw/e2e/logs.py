"""Bounded log files for the local gateway: each is rotated once it passes a size limit.

The local gateway's children write to files in its work directory, and Envoy's access log there
grows by about 185 bytes a request (37 MB per 200k requests in the soak), without end on a
long-running `make run`. Every `ROTATE_EVERY_S` the gateway checks each log; one over
`LOG_LIMIT_BYTES` is rotated copy-and-truncate style: its content replaces `<name>.1` and the file
is truncated in place. The writers opened their files with O_APPEND, so they keep writing, now at
the new end, without being told; lines written between the copy and the truncation are lost,
which a local development log can afford. So each log takes at most about twice the limit.
(On Kubernetes the services log to stdout, which the kubelet rotates.)
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["LOG_LIMIT_BYTES", "ROTATE_EVERY_S", "keep_rotated", "rotate"]

LOG_LIMIT_BYTES = 64 * 2**20
ROTATE_EVERY_S = 5.0


def rotate(path: Path, limit_bytes: int = LOG_LIMIT_BYTES) -> bool:
    """Rotates `path` when it is over `limit_bytes` (module docstring); whether it did."""
    try:
        if path.stat().st_size <= limit_bytes:
            return False
    except FileNotFoundError:
        return False
    shutil.copyfile(path, path.with_name(path.name + ".1"))
    with path.open("r+b") as log:
        log.truncate(0)
    return True


async def keep_rotated(
    paths: Callable[[], Iterable[Path]],
    limit_bytes: int = LOG_LIMIT_BYTES,
    every_s: float = ROTATE_EVERY_S,
) -> None:
    """Rotates the current `paths()` every `every_s` until cancelled (off the event loop)."""
    while True:
        await asyncio.sleep(every_s)
        for path in paths():
            await asyncio.to_thread(rotate, path, limit_bytes)
