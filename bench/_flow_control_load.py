"""The flow-control benchmark's load, and what it reads from the gateway while the load runs.

Load: one seeded Poisson stream per client class (an objective and a tenant, sent as
`x-gateway-inference-objective` and `x-gateway-inference-fairness-id`), each an open loop of
`bench._load.open_loop` on its own session, all four at once: their sum is a Poisson stream of
the total rate. Every request is a streamed chat of `MAX_TOKENS` tokens with a prompt of its
own (no prefix shared between requests, so the prefix cache does not favour anyone).

Observation: `Probe` scrapes the EPP's `/metrics` (flow-control queue sizes per priority, pool
saturation, queue-time histograms) and each simulator rank's (vLLM's running and waiting
gauges); `Timeline` polls them every `POLL_S` for the plot of where requests wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench import _load

__all__ = [
    "CLASSES",
    "MAX_TOKENS",
    "ClientClass",
    "Probe",
    "Timeline",
    "bucket_p90",
    "run_classes",
]

MAX_TOKENS = 128
"""Every request's answer length: examples/flow-control/sim.yaml's default-max-tokens."""
POLL_S = 0.5
QUEUE_SIZE = "inference_extension_flow_control_queue_size"
SATURATION = "inference_extension_flow_control_pool_saturation"
QUEUE_TIME = "inference_extension_flow_control_request_queue_duration_seconds"
_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10)


@dataclass(frozen=True, slots=True)
class ClientClass:
    """One kind of client: its objective, its tenant and its share of the total rate."""

    objective: str
    tenant: str
    share: float

    @property
    def name(self) -> str:
        return f"{self.objective}/{self.tenant}"

    @property
    def headers(self) -> dict[str, str]:
        return {
            "x-gateway-inference-objective": self.objective,
            "x-gateway-inference-fairness-id": self.tenant,
        }


CLASSES = (
    ClientClass("critical", "team-a", 0.20),
    ClientClass("critical", "team-b", 0.05),
    ClientClass("batch", "team-a", 0.60),
    ClientClass("batch", "team-b", 0.15),
)
"""A quarter of the load is critical; team-a offers 4x team-b's in each objective."""


def _body(rng: random.Random, index: int) -> bytes:
    """A streamed chat of about 2 kB whose prompt starts with its own words."""
    request = json.loads(_load.chat_body(2048))
    user = request["messages"][1]
    user["content"] = f"Request {index} ({rng.getrandbits(64):x}). {user['content']}"
    request["messages"] = [user]  # no shared system prompt either
    request.update(stream=True, max_tokens=MAX_TOKENS)
    return json.dumps(request).encode()


async def run_classes(
    url: str, rate: float, duration_s: float, drain_s: float, seed: int
) -> dict[str, list[_load.Streamed]]:
    """Every class's open loop at its share of `rate` for `duration_s`; answers per class."""

    async def one(number: int, cls: ClientClass) -> list[_load.Streamed]:
        rng = random.Random(f"{seed}:{cls.name}")  # noqa: S311 - a seeded benchmark
        count = max(1, round(rate * cls.share * duration_s))
        arrivals = _load.poisson_arrivals(rng.expovariate, rate * cls.share, count)
        bodies = [_body(rng, number * 100_000 + i) for i in range(count)]
        async with _load.new_session(0, _TIMEOUT, cls.headers) as session:
            return await _load.open_loop(
                session, url, bodies, arrivals, drain_s=drain_s, on_progress=lambda _: None
            )

    answers = await asyncio.gather(*(one(i, cls) for i, cls in enumerate(CLASSES)))
    return {cls.name: list(done) for cls, done in zip(CLASSES, answers, strict=True)}


def _samples(text: str, names: Iterable[str]) -> list[tuple[str, dict[str, str], float]]:
    wanted = set(names)
    return [
        (sample.name, sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in wanted
    ]


@dataclass(slots=True)
class Probe:
    """Reads the EPP's and the simulators' metrics pages."""

    session: aiohttp.ClientSession
    epp_metrics: str
    sim_metrics: Sequence[str]

    async def _text(self, url: str) -> str:
        async with self.session.get(url) as response:
            return await response.text()

    async def epp(self, *names: str) -> list[tuple[str, dict[str, str], float]]:
        return _samples(await self._text(self.epp_metrics), names)

    async def queued(self) -> dict[str, float]:
        """Requests in the EPP's flow-control queues, per priority."""
        out: dict[str, float] = {}
        for _, labels, value in await self.epp(QUEUE_SIZE):
            out[labels.get("priority", "")] = out.get(labels.get("priority", ""), 0) + value
        return out

    async def saturation(self) -> float | None:
        values = [value for _, _, value in await self.epp(SATURATION)]
        return max(values) if values else None

    async def engines(self) -> tuple[float, float]:
        """Requests running and waiting in the simulators, over every rank."""
        texts = await asyncio.gather(*(self._text(url) for url in self.sim_metrics))
        names = ("vllm:num_requests_running", "vllm:num_requests_waiting")
        found = [_samples(text, names) for text in texts]
        running = sum(v for samples in found for n, _, v in samples if n == names[0])
        waiting = sum(v for samples in found for n, _, v in samples if n == names[1])
        return running, waiting

    async def queue_time_p90(self) -> dict[str, float | None]:
        """p90 of the EPP's queue time per priority (dispatched requests), from the
        histogram: the upper bound of the bucket holding the 90th percentile."""
        buckets: dict[str, dict[float, float]] = {}
        for _, labels, value in await self.epp(QUEUE_TIME + "_bucket"):
            if labels.get("outcome", "Dispatched") != "Dispatched":
                continue
            per = buckets.setdefault(labels.get("priority", ""), {})
            bound = float(labels["le"])
            per[bound] = per.get(bound, 0) + value
        return {priority: bucket_p90(per) for priority, per in buckets.items()}


def bucket_p90(cumulative: Mapping[float, float]) -> float | None:
    """The upper bound of the bucket holding the 90th percentile of a Prometheus histogram
    (`le` bound -> cumulative count); None when it observed nothing."""
    ordered = sorted(cumulative.items())
    total = ordered[-1][1] if ordered else 0
    if not total:
        return None
    return next(bound for bound, count in ordered if count >= 0.9 * total)


@dataclass(slots=True)
class Timeline:
    """Where requests wait, every `POLL_S`: the EPP's queues and the simulators' queues."""

    probe: Probe
    samples: list[dict[str, float]] = field(default_factory=list)

    async def poll(self, start: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                queued = await self.probe.queued()
                running, waiting = await self.probe.engines()
                self.samples.append(
                    {
                        "t": loop.time() - start,
                        "epp_queued": sum(queued.values()),
                        **{f"epp_queued_{p}": n for p, n in queued.items()},
                        "engine_running": running,
                        "engine_waiting": waiting,
                    }
                )
            await asyncio.sleep(POLL_S)
