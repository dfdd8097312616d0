"""One workload's run, fixed before any router sees it: the fleet, the requests, their arrivals.

For each workload one seeded request sequence is drawn, and one seeded set of Poisson arrival
times per load step; every router gets exactly those, on a fleet of the same shape. A request
sent `with_previous` (a parallel sub-call) shares its predecessor's instant; the Poisson process
then runs over the instants, at the rate that keeps the step's requests per second.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

from bench._load import poisson_arrivals
from bench.lab.settings import PRESET, Settings
from bench.lab.workloads import MODEL, LabRequest, Workload

__all__ = ["Plan", "make_plan", "sim_yaml"]


def sim_yaml(workload: Workload, settings: Settings) -> str:
    """The fleet's `igw-sim --config`: one entry per pod, every port picked by the OS."""
    lines = [
        "# igw-sim --config written by bench.lab for one (workload, router) run",
        "host: 127.0.0.1",
        "port: 0",
        f"preset: {PRESET}",
        f"model: {MODEL}",
        f"time-scale: {settings.time_scale}",
        "log-format: console",
        "v: 1",
        "pods:",
    ]
    for i, extra in enumerate(workload.pods(settings.pods)):
        options: dict[str, object] = {"pod-name": f"pod-{i}"}
        for key, value in extra.items():
            if key == "speed":
                options["time-scale"] = settings.time_scale * float(str(value))
            else:
                options[key] = value
        lines.append(f"  - {json.dumps(options)}")
    return "\n".join(lines) + "\n"


@dataclass(slots=True)
class Plan:
    """One workload's requests and arrivals, shared by every router."""

    workload: Workload
    rates: list[float]
    requests: list[LabRequest]
    arrivals: list[list[float]]
    """Per rung, offsets from the rung's start."""
    slices: list[tuple[int, int]]
    """Per rung, the [start, end) indexes into `requests`."""


def make_plan(workload: Workload, settings: Settings) -> Plan:
    capacity = workload.capacity_rps_per_pod * settings.pods * settings.time_scale
    rates = [capacity * f for f in settings.factors]
    counts = [max(1, round(rate * settings.duration)) for rate in rates]
    rng = random.Random(f"{settings.seed}:{workload.name}:requests")  # noqa: S311 - seeded
    requests = workload.make(rng, sum(counts), settings.pods)
    arrivals, slices, start = [], [], 0
    for i, (rate, count) in enumerate(zip(rates, counts, strict=True)):
        timing = random.Random(f"{settings.seed}:{workload.name}:arrivals:{i}")  # noqa: S311
        arrivals.append(_arrivals(timing, rate, requests[start : start + count]))
        slices.append((start, start + count))
        start += count
    return Plan(workload, rates, requests, arrivals, slices)


def _arrivals(rng: random.Random, rate: float, requests: list[LabRequest]) -> list[float]:
    """Poisson instants at `rate` requests per second; sub-calls share their caller's."""
    joined = [i > 0 and r.with_previous for i, r in enumerate(requests)]
    instants = len(requests) - sum(joined)
    times = iter(poisson_arrivals(rng.expovariate, rate * instants / len(requests), instants))
    out: list[float] = []
    for together in joined:
        out.append(out[-1] if together else next(times))
    return out
