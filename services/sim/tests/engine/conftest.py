"""Engines on the `tiny` preset, started for one test and stopped after it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import pytest

from igw.sim.engine import Engine, EngineConfig

EngineFactory = Callable[..., Awaitable[Engine]]


@pytest.fixture
async def make_engine() -> AsyncIterator[EngineFactory]:
    """`await make_engine(loras=(...), **overrides)`: a started tiny engine, 20x real time
    unless `time_scale` says otherwise."""
    engines: list[Engine] = []

    async def make(loras: Iterable[str] = (), **overrides: object) -> Engine:
        overrides.setdefault("time_scale", 20.0)
        engine = Engine(EngineConfig.from_preset("tiny", **overrides), loras=loras)
        await engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.stop()
