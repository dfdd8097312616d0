"""The values leader election works with: a Lease's record, its timings and the clock.

`LeaseRecord` is a Lease's `spec` as client-go's `LeaderElectionRecord` holds it; `LeaseTimings`
are the lease duration, renew deadline and retry period (controller-runtime's defaults, checked
as client-go checks them); `micro_time` writes a Kubernetes MicroTime. `igw.common.kube.leader`
runs the election with them.
"""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

__all__ = [
    "JITTER_FACTOR",
    "Clock",
    "LeaseRecord",
    "LeaseTimings",
    "SystemClock",
    "micro_time",
    "new_identity",
    "timings_fields",
]

JITTER_FACTOR = 1.2  # client-go's leaderelection.JitterFactor


@dataclass(frozen=True, slots=True)
class LeaseTimings:
    """client-go's three durations, with controller-runtime's defaults and client-go's checks."""

    lease_duration_s: float = 15.0  # how long a non-leader waits after the last change it saw
    renew_deadline_s: float = 10.0  # how long a leader keeps trying to renew before it steps down
    retry_period_s: float = 2.0  # between attempts

    def __post_init__(self) -> None:
        if self.retry_period_s <= 0:
            raise ValueError("retry_period_s must be greater than zero")
        if self.lease_duration_s < 1:
            raise ValueError("lease_duration_s must be at least 1 (the Lease holds whole seconds)")
        if self.lease_duration_s <= self.renew_deadline_s:
            raise ValueError("lease_duration_s must be greater than renew_deadline_s")
        if self.renew_deadline_s <= JITTER_FACTOR * self.retry_period_s:
            raise ValueError("renew_deadline_s must be greater than retry_period_s * 1.2")

    @property
    def request_timeout_s(self) -> float:
        """One hung request must not cost the leadership (client-go's heuristic)."""
        return max(1.0, self.renew_deadline_s / 2)


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, timezone-aware: what the Lease's MicroTimes say."""
        ...

    def monotonic(self) -> float:
        """Seconds from any origin, never going back: expiry and deadlines."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def micro_time(moment: datetime) -> str:
    """`moment` as a Kubernetes MicroTime (RFC 3339, microseconds, UTC): `...T12:00:00.000001Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_identity() -> str:
    """Hostname (the pod's name in a pod) and a random suffix, as controller-runtime makes it."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """A Lease's `spec`, as client-go's `LeaderElectionRecord` holds it."""

    holder: str
    duration_s: int
    acquire_time: str | None
    renew_time: str | None
    transitions: int

    @classmethod
    def from_lease(cls, lease: dict[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            duration_s=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=spec.get("acquireTime"),
            renew_time=spec.get("renewTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.duration_s,
            "acquireTime": self.acquire_time,
            "renewTime": self.renew_time,
            "leaseTransitions": self.transitions,
        }


def timings_fields(timings: LeaseTimings) -> dict[str, float]:
    return {
        "lease_duration_s": timings.lease_duration_s,
        "renew_deadline_s": timings.renew_deadline_s,
        "retry_period_s": timings.retry_period_s,
    }
