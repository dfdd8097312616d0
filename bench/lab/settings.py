"""The lab's options: what `python -m bench.lab` (and `make bench`, `make bench-quick`) runs."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._paths import RESULTS
from bench.lab.routers import ROUTERS
from bench.lab.workloads import WORKLOADS, Workload

__all__ = ["PRESET", "Settings", "parse_args"]

DESCRIPTION = "The benchmark lab: igw against other routers on a simulated fleet, and its cost."
DEFAULT_OUT = RESULTS / "lab"
QUICK_OUT = RESULTS / "lab-quick"
PRESET = "llama-3.1-8b-h100"
ALL_ROUTERS = tuple(ROUTERS)
CORE_ROUTERS = ("round-robin", "least-request", "igw", "igw-learned", "omniscient")
"""Routers on every workload but `prefix-high`, which runs all six (the igw variants differ
most where prefixes matter most; running them everywhere would not fit in 30 minutes)."""


@dataclass(frozen=True, slots=True)
class Settings:
    workloads: tuple[str, ...]
    routers: tuple[str, ...] | None
    """None: all routers on `prefix-high`, `CORE_ROUTERS` on the others."""
    pods: int
    time_scale: float
    factors: tuple[float, ...]
    duration: float
    drain: float
    seed: int
    cost: bool
    quick: bool
    out: Path

    def routers_for(self, workload: Workload) -> tuple[str, ...]:
        if self.routers is not None:
            return self.routers
        return ALL_ROUTERS if workload.name == "prefix-high" else CORE_ROUTERS


def _csv(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_args(argv: Sequence[str]) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench.lab", description=DESCRIPTION)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few-minute run: prefix-high and sharegpt, 3 routers, 2 short steps",
    )
    parser.add_argument("--workloads", type=_csv, help=f"comma-separated: {', '.join(WORKLOADS)}")
    parser.add_argument("--routers", type=_csv, help=f"comma-separated: {', '.join(ROUTERS)}")
    parser.add_argument("--pods", type=int, default=8)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=0.5,
        help="simulated seconds per wall second (0.5: GPUs at half speed)",
    )
    parser.add_argument(
        "--factors",
        type=lambda t: tuple(float(x) for x in _csv(t)),
        help="load steps as multiples of the nominal capacity (0.5,1,2)",
    )
    parser.add_argument("--duration", type=float, help="seconds of arrivals per step (10)")
    parser.add_argument(
        "--drain", type=float, default=30.0, help="max seconds to wait after a step"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-cost", action="store_true", help="skip the cost benchmarks")
    parser.add_argument(
        "--out", type=Path, help="results directory (bench/results/lab, or lab-quick)"
    )
    args = parser.parse_args(list(argv))
    quick = bool(args.quick)
    workloads = args.workloads or (("prefix-high", "sharegpt") if quick else tuple(WORKLOADS))
    routers = args.routers or (("round-robin", "igw", "omniscient") if quick else None)
    for name in workloads:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; workloads: {', '.join(WORKLOADS)}")
    for name in routers or ():
        if name not in ROUTERS:
            parser.error(f"unknown router {name!r}; routers: {', '.join(ROUTERS)}")
    factors = args.factors or ((0.5, 2.0) if quick else (0.5, 1.0, 2.0))
    duration = args.duration or (8.0 if quick else 10.0)
    if args.pods < 1 or args.time_scale <= 0 or duration <= 0 or args.drain < 0:
        parser.error("--pods, --time-scale and --duration must be > 0, --drain >= 0")
    if not factors or min(factors) <= 0:
        parser.error("--factors must be positive numbers")
    return Settings(
        workloads,
        routers,
        args.pods,
        args.time_scale,
        factors,
        duration,
        args.drain,
        args.seed,
        cost=not args.no_cost,
        quick=quick,
        out=args.out or (QUICK_OUT if quick else DEFAULT_OUT),
    )
