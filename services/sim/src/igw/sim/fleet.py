"""A fleet in one process: every simulated pod and data-parallel rank a `SimConfig` asks for.

`plan` turns the configuration into one `RankPlan` per served port: the engine's configuration
(the preset with the pod's overrides) and the HTTP settings. Each DP rank is an independent
engine on its own port (port, port + 1, ...), as vLLM's ranks behind an external load balancer
are, and is named `<pod>-rank-<i>` as llm-d's EPP names data-parallel endpoints; a pod with one
rank keeps its plain name. A pod's name defaults to `<hostname>-<port>`.

`Fleet` owns the `SimPod`s, all on the caller's event loop: `start()` starts them together (if
one fails, those already started are stopped and the error is raised), `stop()` stops them
together, each in its own ordered way (see `igw.sim.server`).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import TracerProvider

from igw.common.telemetry import get_logger
from igw.sim import tokenizer
from igw.sim.config import ConfigError, PodConfig, SimConfig
from igw.sim.engine import Engine, EngineConfig, SimEngine
from igw.sim.failures import FailureInjector
from igw.sim.server import PodSettings, SimPod

__all__ = ["Fleet", "RankPlan", "plan"]

_log = get_logger(__name__)

EngineFactory = Callable[[EngineConfig], SimEngine]


@dataclass(frozen=True, slots=True)
class RankPlan:
    """One served port: an engine and the HTTP layer in front of it."""

    settings: PodSettings
    engine: EngineConfig
    failure_rate: float = 0.0
    failure_types: tuple[str, ...] = ()
    seed: int | None = None


def plan(config: SimConfig, *, hostname: str | None = None) -> list[RankPlan]:
    """Every rank of every pod; raises `ConfigError` when an engine option is invalid."""
    host_label = hostname or socket.gethostname()
    plans: list[RankPlan] = []
    for index, pod in enumerate(config.pods):
        try:
            engine = EngineConfig.from_preset(pod.preset, **pod.engine_overrides())
        except ValueError as e:
            where = f"pods[{index}]: " if len(config.pods) > 1 else ""
            raise ConfigError(f"{where}{e}") from None
        base_name = pod.pod_name or f"{host_label}-{pod.port or f'pod{index}'}"
        for rank in range(pod.data_parallel_size):
            name = base_name if pod.data_parallel_size == 1 else f"{base_name}-rank-{rank}"
            plans.append(_rank_plan(config, pod, engine, name=name, rank=rank, n=len(plans)))
    return plans


def _rank_plan(
    config: SimConfig, pod: PodConfig, engine: EngineConfig, *, name: str, rank: int, n: int
) -> RankPlan:
    settings = PodSettings(
        model=pod.served_model_name or engine.model_name,
        model_root=engine.model_name,
        max_model_len=engine.max_model_len,
        pod_name=name,
        port=pod.port + rank if pod.port else 0,
        host=config.host,
        rank=rank,
        adapters={module.name: module.path for module in pod.lora_modules},
        startup_delay_s=pod.startup_delay,
        default_max_tokens=pod.default_max_tokens,
    )
    # Each rank draws its own failures: the same seed everywhere would fail the same requests.
    seed = None if pod.seed is None else pod.seed + n
    return RankPlan(settings, engine, pod.failure_injection_rate, pod.failure_types, seed)


class Fleet:
    """The pods of one process; see the module docstring."""

    def __init__(
        self,
        plans: Sequence[RankPlan],
        *,
        tracer_provider: TracerProvider | None = None,
        engine_factory: EngineFactory = Engine,
    ) -> None:
        self.pods = tuple(
            SimPod(
                engine_factory(p.engine),
                p.settings,
                tokenizer=tokenizer,
                failures=FailureInjector(p.failure_rate, p.failure_types, seed=p.seed),
                tracer_provider=tracer_provider,
            )
            for p in plans
        )

    async def start(self) -> None:
        results = await asyncio.gather(*(pod.start() for pod in self.pods), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.stop()
            raise errors[0]
        _log.info("fleet serving", pods=len(self.pods), ports=[pod.port for pod in self.pods])

    async def stop(self) -> None:
        await asyncio.gather(*(pod.stop() for pod in self.pods), return_exceptions=True)
