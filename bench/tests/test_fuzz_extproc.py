"""The ext_proc fuzzer's short run (issue 13 item 4): both services survive 400 hostile streams.

Each service runs as a real process from its command line; every stream must end within the
deadline with valid replies, an ImmediateResponse with a reason, or a gRPC status with a message;
the process must stay alive and SERVING, no request may be left open, and no stream may end in an
unexpected exception. The long run (100,000 streams, RSS growth)
is `make fuzz`; results in bench/results/fuzz.md. Nothing here is timed: a loaded 2-core machine
only makes it slower.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bench._fuzz.cases import Case, make_case
from bench._fuzz.oracle import validate
from bench._fuzz.report import summary
from bench._fuzz.run import run
from bench._fuzz.service import Service, ServiceName
from igw.common.testing import messages
from igw.common.testing.messages import ReplyView

SEED = 13
COUNT = 400
RSS_BOUND_KIB = 256 * 1024


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ["bbr", "epp"])
async def test_service_survives_the_short_fuzz_run(name: ServiceName, tmp_path: Path) -> None:
    service = await asyncio.to_thread(Service.start, name, tmp_path / name)
    try:
        result = await run(service, seed=SEED, count=COUNT, concurrency=4, batch=100)
    finally:
        await asyncio.to_thread(service.close)
    text = summary(result, f"python -m bench.fuzz_extproc --service {name} --seed {SEED}")
    assert result.ran == COUNT, text
    assert not result.failures, text
    assert not any(value for value in result.open_requests.values()), text
    assert not result.servicer_exceptions, text
    unexplained = [p for p in result.problems if "unexpected exception" not in p]
    assert not unexplained, text
    # Memory is judged by the long run; this only catches a runaway.
    assert result.rss_kib["end"] - result.rss_kib["start"] < RSS_BOUND_KIB, text
    # The run reached every kind of case and every kind of ending a healthy service gives.
    assert set(result.case_kinds) == {
        "valid",
        "bad-body",
        "bad-headers",
        "order",
        "eos",
        "odd",
        "soup",
    }
    assert {"replied", "immediate-4xx", "cancelled"} <= set(result.outcomes), text


def test_cases_are_a_function_of_seed_and_index() -> None:
    again = [make_case(SEED, i) for i in range(50)]
    assert [make_case(SEED, i) for i in range(50)] == again
    assert [c.messages for c in again] != [make_case(SEED + 1, i).messages for i in range(50)]


BODY = b'{"model":"m","prompt":"hello"}'
SENT = [
    messages.request_headers({":path": "/v1/completions"}),
    messages.request_body(BODY[:5], end_of_stream=False),
    messages.request_body(BODY[5:], end_of_stream=True),
]


def _headers(**changes: str) -> ReplyView:
    return ReplyView("request_headers", set_headers=dict(changes))


def _chunk(body: bytes, *, eos: bool) -> ReplyView:
    return ReplyView("request_body", body=body, streamed=True, end_of_stream=eos)


@pytest.mark.parametrize(
    ("replies", "problem"),
    [
        pytest.param([_headers(), _chunk(BODY, eos=True)], None, id="echoed"),
        pytest.param(
            [_headers(**{"content-length": "3"}), _chunk(b"abc", eos=True)], None, id="rewritten"
        ),
        pytest.param([ReplyView("immediate_response", status=400, body=b"no")], None, id="400"),
        pytest.param([_headers(), _chunk(BODY[:-1], eos=True)], "came back as", id="truncated"),
        pytest.param([_chunk(BODY, eos=True), _headers()], "start with", id="body-first"),
        pytest.param([_headers(), _chunk(BODY, eos=False)], "end_of_stream", id="never-ends"),
        pytest.param(
            [ReplyView("immediate_response", status=500)], "status 500 and body", id="bare"
        ),
        pytest.param(
            [ReplyView("immediate_response", status=400, body=b"x"), _headers()],
            "after an immediate",
            id="after-immediate",
        ),
        pytest.param([ReplyView("response_headers")], "no such message", id="unasked-phase"),
        pytest.param(
            [_headers(), _chunk(b"x" * 62_001, eos=True)], "streamed chunk of", id="big-chunk"
        ),
    ],
)
def test_oracle_names_what_a_broken_reply_sequence_breaks(
    replies: list[ReplyView], problem: str | None
) -> None:
    case = Case(0, "valid", SENT, echoed_body=BODY)
    found = validate(case, tuple(replies))
    assert found is None if problem is None else problem in (found or "")


def test_a_stream_the_server_ended_early_is_not_held_to_the_echo() -> None:
    case = Case(0, "valid", SENT, echoed_body=BODY)
    assert "do not start with its headers reply" in (validate(case, ()) or "")
    assert validate(case, (), ended_early=True) is None
    # What replies it did get are still checked.
    big = (_headers(), _chunk(b"x" * 62_001, eos=False))
    assert "streamed chunk of" in (validate(case, big, ended_early=True) or "")
