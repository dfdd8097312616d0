"""The benchmark lab end to end at a tiny scale: what a user running `make bench` would notice.

Two pods, the shared-prefix workload with low cache pressure, round-robin and the omniscient
router, a few seconds of load: every request must be answered, the report and plots must be
written with the command that made them, and the omniscient router must send a prompt group
back to the pod that already served it (the point of reading the engines' caches).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench._paths import REPO
from bench.lab import virtual
from bench.lab.plan import make_plan
from bench.lab.settings import parse_args
from bench.lab.virtual import VirtualLoop
from bench.lab.workloads import WORKLOADS


@pytest.mark.envoy
@pytest.mark.timeout(300)
def test_lab_runs_end_to_end_and_omniscient_follows_the_cache(tmp_path: Path) -> None:
    out = tmp_path / "lab"
    args = [
        "--pods", "2", "--workloads", "prefix-low", "--routers", "round-robin,omniscient",
        "--factors", "1", "--duration", "4", "--time-scale", "1", "--seed", "3",
        "--no-cost", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "bench.lab", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "[prefix-low | omniscient] step 1/1" in done.stdout  # progress is shown

    report = (out / "report.md").read_text()
    assert "python -m bench.lab " + " ".join(args[:-1]) in report
    assert "- seed: 3" in report
    assert "| round-robin | 1.00 |" in report
    assert "| omniscient | 1.00 |" in report
    for name in ("prefix-low-ttft.png", "prefix-low-pods.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")

    rows = json.loads((out / "results.json").read_text())["rows"]
    assert {r["router"] for r in rows} == {"round-robin", "omniscient"}
    for row in rows:
        figures = row["figures"]
        assert figures["sent"] >= 10
        assert figures["failed"] == 0, figures["errors"]
        assert figures["ttft_p90"] is not None
        assert {o["pod"] for o in row["outcomes"]} == {"pod-0", "pod-1"}  # both pods served

    # Requests of a group sent after an earlier one of that group had finished go back to a
    # pod that served the group, where its system prompt is cached.
    omniscient = next(r for r in rows if r["router"] == "omniscient")
    served: dict[str, list[tuple[float, str]]] = {}
    repeats = followed = 0
    for o in sorted(omniscient["outcomes"], key=lambda o: o["sent"]):
        earlier = [pod for end, pod in served.get(o["group"], []) if end < o["sent"]]
        if earlier:
            repeats += 1
            followed += o["pod"] in earlier
        served.setdefault(o["group"], []).append((o["sent"] + o["e2e"], o["pod"]))
    assert repeats >= 5
    assert followed >= 0.9 * repeats, (followed, repeats)
    assert omniscient["figures"]["hit_rate"] > 0.5


def test_a_seed_names_one_exact_request_sequence() -> None:
    settings = parse_args(["--seed", "5"])
    for workload in WORKLOADS.values():
        first, again = make_plan(workload, settings), make_plan(workload, settings)
        assert [r.body for r in first.requests] == [r.body for r in again.requests]
        assert first.arrivals == again.arrivals
        assert len(first.requests) == first.slices[-1][1]
    other = make_plan(WORKLOADS["sharegpt"], parse_args(["--seed", "6"]))
    assert other.requests[0].body != make_plan(WORKLOADS["sharegpt"], settings).requests[0].body


def test_bad_options_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--workloads", "nope"], ["--routers", "nginx"], ["--factors", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            parse_args(argv)
        assert exit_info.value.code == 2, argv
        assert "error:" in capsys.readouterr().err


def test_agentic_sub_calls_arrive_together_and_grow_their_sessions_context() -> None:
    plan = make_plan(WORKLOADS["agentic"], parse_args(["--seed", "1"]))
    flat = [t for rung in plan.arrivals for t in rung]
    starts = {lo for lo, _ in plan.slices}  # a load step's first request has its own instant
    fan_outs = [i for i, r in enumerate(plan.requests) if r.with_previous and i not in starts]
    assert fan_outs  # a third of the steps fan out
    for i in fan_outs:
        assert plan.requests[i - 1].group == plan.requests[i].group
        assert flat[i] == flat[i - 1]
    first_session = [r for r in plan.requests if r.group == plan.requests[0].group]
    sizes = [len(r.body) for r in first_session if not r.with_previous]
    assert sizes == sorted(sizes)  # each step adds to the context
    assert len(first_session) >= 8


def test_the_virtual_loop_jumps_over_waits_instead_of_sleeping() -> None:
    loop = VirtualLoop()
    try:
        started = time.perf_counter()
        loop.run_until_complete(asyncio.sleep(3600))
        assert loop.time() >= 1000.0 + 3600  # an hour of simulated time ...
        assert time.perf_counter() - started < 60  # ... and no hour of waiting
    finally:
        loop.close()


def test_the_virtual_least_request_router_prefers_the_pod_with_fewer_outstanding() -> None:
    """Envoy's LEAST_REQUEST over two pods draws two at random (the same one a quarter of the
    time) and takes the one with fewer requests outstanding: a busy pod gets little until the
    other catches up, and an answered request counts no more."""
    router = virtual._LeastRequest(2, seed=1)
    router.outstanding = [10, 0]
    picks = [router.pick(n, b"") for n in range(20)]
    assert picks.count(1) >= 12
    for _ in range(router.outstanding[0]):
        router.done(0)
    assert router.outstanding[0] == 0
