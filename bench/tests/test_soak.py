"""The soak benchmark (issue 13 item 5): a short run through a real local gateway, and its
arithmetic.

The short run sends a few hundred requests of the seeded mix with a sample every 20, then checks
what a reader of bench/results/soak.md relies on: every kind of request was sent and had its
induced outcome (no 5xx, no transport error), every process was sampled throughout, and the
report and its JSON say so. Nothing is timed: a loaded 2-core machine only makes it slower.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from bench import _soak_report as report
from bench import soak
from bench._soak_mix import KINDS, plan

REQUESTS = 300
SAMPLE_EVERY = 20
PROCESSES = ("envoy", "bbr", "epp", "sim")


@pytest.mark.envoy
@pytest.mark.timeout(300)
async def test_a_short_soak_sends_every_kind_and_samples_every_process(tmp_path: Path) -> None:
    argv = ["--requests", str(REQUESTS), "--concurrency", "4", "--sample-every", str(SAMPLE_EVERY)]
    args = soak.parse_args([*argv, "--out", str(tmp_path)])
    status = await soak.run(args, "python -m bench.soak " + " ".join(argv))
    data = json.loads((tmp_path / "soak.json").read_text())
    markdown = (tmp_path / "soak.md").read_text()

    assert status == 0, markdown
    assert (data["requests_done"], data["partial"], data["unexpected"]) == (REQUESTS, False, 0)
    assert data["totals"]["5xx"] == data["totals"]["transport"] == 0
    for kind in KINDS:  # each kind sent, and every one of them had its induced outcome
        counts = data["by_kind"][kind.name]
        assert set(counts) == {kind.expect}, (kind.name, counts)
    assert len(data["samples"]) == REQUESTS // SAMPLE_EVERY + 1  # the baseline, then every 20
    for sample in data["samples"]:
        assert all(sample["procs"][p]["rss_kib"] > 0 for p in PROCESSES), sample
        assert all(sample["procs"][p]["fds"] > 0 for p in PROCESSES), sample
    assert set(data["growth"]) == set(PROCESSES)
    assert all(data["growth"][p]["restarts"] == 0 for p in PROCESSES)
    assert "## Growth after warm-up" in markdown
    assert "No unexpected outcome" in markdown
    assert (tmp_path / "soak.png").stat().st_size > 0


def test_the_mix_is_the_same_for_a_seed_and_differs_across_seeds() -> None:
    def first(seed: int) -> list[bytes]:
        return [p.body for p in itertools.islice(plan(seed), 50)]

    assert first(1) == first(1)
    assert first(1) != first(2)


@pytest.mark.parametrize(
    ("xs", "ys", "expected"),
    [
        pytest.param([0, 1, 2, 3], [5, 5, 5, 5], 0.0, id="flat"),
        pytest.param([0, 1, 2, 3], [1, 3, 5, 7], 2.0, id="steady-growth"),
        pytest.param([7], [1], 0.0, id="one-point-has-no-slope"),
    ],
)
def test_slope(xs: list[float], ys: list[float], expected: float) -> None:
    assert report.slope(xs, ys) == pytest.approx(expected)


def test_growth_fits_the_last_process_after_warm_up_and_counts_restarts() -> None:
    def reading(pid: int, mib: float) -> dict[str, int]:
        return {"pid": pid, "rss_kib": int(mib * 1024), "fds": 10}

    samples = [
        {"requests": 0, "procs": {"epp": reading(1, 50)}},
        {"requests": 100_000, "procs": {"epp": reading(1, 900)}},  # grows, then is restarted
        {"requests": 200_000, "procs": {"epp": None}},
        {"requests": 300_000, "procs": {"epp": reading(2, 60)}},
        {"requests": 400_000, "procs": {"epp": reading(2, 62)}},
    ]
    figures = report.growth(samples, ["epp"], warmup=50_000)["epp"]
    assert (figures["restarts"], figures["absent_samples"]) == (1, 1)
    assert figures["rss_mib_per_100k"] == pytest.approx(2.0, abs=0.01)
    assert figures["growing"]  # 2 MiB per 100k is over the limit
