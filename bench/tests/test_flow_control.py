"""The flow-control benchmark's arithmetic: outcome counts, the capacity it offers load against,
the queue-time p90 read from a histogram, and the verdicts its report states."""

from __future__ import annotations

from typing import Any

import pytest

from bench import _flow_control_report as report
from bench._flow_control_load import CLASSES, bucket_p90
from bench._load import Streamed
from bench.flow_control import capacity_rps


def answer(status: int, ttft_s: float | None = None, error: str = "") -> Streamed:
    done = Streamed(released=0.0, started=0.0, status=status, error=error)
    if ttft_s is not None:
        done.token_times = [ttft_s]
        done.done = ttft_s + 1
    return done


def test_figures_count_each_outcome_once_and_time_only_the_answered() -> None:
    answers = [
        *(answer(200, ttft_s=t / 10) for t in range(1, 11)),
        answer(429, error="HTTP 429"),
        answer(503, error="HTTP 503"),
        answer(503, error="HTTP 503"),
        answer(200, error="not finished within the drain limit"),  # streaming when cut off
        answer(0, error="not finished within the drain limit"),  # never answered
        answer(500, error="HTTP 500"),
    ]
    f = report.figures(answers)
    assert (f["sent"], f["ok"], f["429"], f["503"], f["unfinished"], f["other"]) == (
        16, 10, 1, 2, 2, 1,
    )  # fmt: skip
    assert f["ttft_p50"] == pytest.approx(500)
    assert f["ttft_p90"] == pytest.approx(900)


def test_throughput_counts_answers_over_the_whole_span() -> None:
    answers = [answer(200, ttft_s=0.5), answer(200, ttft_s=3.0), answer(503, error="HTTP 503")]
    assert report.throughput(answers) == pytest.approx(2 / 4.0)  # starts at 0, last done at 4


def test_the_classes_share_the_whole_load() -> None:
    assert sum(c.share for c in CLASSES) == pytest.approx(1.0)
    assert {c.objective for c in CLASSES} == {"critical", "batch"}


def test_capacity_grows_with_slots_and_speed() -> None:
    base = capacity_rps({"max-num-seqs": 2, "time-scale": 1})
    assert 3 < base < 7  # ~1.7 s per 128-token answer, 8 slots
    assert capacity_rps({"max-num-seqs": 2, "time-scale": 2}) == pytest.approx(2 * base)
    assert capacity_rps({"max-num-seqs": 4, "time-scale": 1}) > 1.9 * base


@pytest.mark.parametrize(
    ("cumulative", "expected"),
    [
        pytest.param({0.1: 0, 1.0: 5, 10.0: 10, float("inf"): 10}, 10.0, id="in-a-middle-bucket"),
        pytest.param({0.1: 9, 1.0: 10, float("inf"): 10}, 0.1, id="90-percent-in-the-first"),
        pytest.param({0.1: 0, float("inf"): 0}, None, id="nothing-observed"),
    ],
)
def test_bucket_p90_is_the_bound_of_the_bucket_holding_it(
    cumulative: dict[float, float], expected: float | None
) -> None:
    assert bucket_p90(cumulative) == expected


def _mode(ok: int, ttft_ms: float, idle: float = 0.01, busy: float = 0.01) -> dict[str, Any]:
    figures = {"sent": 10, "ok": ok, "429": 10 - ok, "503": 0, "ttft_p90": ttft_ms}
    hold = {"idle_cores": idle, "busy_cores": busy, "epp_queued": 40}
    return {"objectives": {"critical": figures}, "hold": hold, "throughput": 4.5}


def test_verdicts_state_the_gain_the_shedding_and_a_busy_wait() -> None:
    lines = report.verdicts({"off": _mode(10, 8000), "on": _mode(7, 1000, busy=0.2)})
    assert lines[0].startswith("- critical: p90 TTFT 8,000 ms with flow control off, 1,000 ms")
    assert "(8.0x lower)" in lines[0]
    assert "7/10 on (3 x 429" in lines[0]
    assert lines[1:3] == [
        "- Throughput with flow control off: 4.50 answers/s.",
        "- Throughput with flow control on: 4.50 answers/s.",
    ]
    assert "NOT near idle" in lines[3]
    worse = report.verdicts({"off": _mode(10, 1000), "on": _mode(10, 1500)})[0]
    assert "(1.5x higher)" in worse
    assert "; near idle" in report.verdicts({"on": _mode(10, 1000, busy=0.02)})[1]
