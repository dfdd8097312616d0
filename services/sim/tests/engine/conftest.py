"""Engines on the `tiny` preset, started for one test and stopped after it."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import pytest

from igw.sim.engine import Engine, EngineConfig

EngineFactory = Callable[..., Awaitable[Engine]]


@pytest.fixture
async def make_engine() -> AsyncIterator[EngineFactory]:
    """`await make_engine(loras=(...), **overrides)`: a started tiny engine, 20x real time
    unless `time_scale` says otherwise. Simulated time never slips to the wall clock
    (`max_lag_wall_s` inf unless given), so step durations stay exact on a busy machine."""
    engines: list[Engine] = []

    async def make(
        loras: Iterable[str] = (), max_lag_wall_s: float = math.inf, **overrides: object
    ) -> Engine:
        overrides.setdefault("time_scale", 20.0)
        engine = Engine(
            EngineConfig.from_preset("tiny", **overrides),
            loras=loras,
            max_lag_wall_s=max_lag_wall_s,
        )
        await engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        await engine.stop()
