"""Waiting for a condition that other tasks make true, instead of sleeping for a guessed time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["wait_until"]


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Returns once `condition()` holds, checked every few milliseconds.

    Raises TimeoutError after `timeout_s`: generous by default, because a loaded machine can be
    slow to get there, and a condition that holds returns at once anyway.
    """
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polls state other tasks change, no event to await
            await asyncio.sleep(0.002)
