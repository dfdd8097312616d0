"""Added latency of the chain (Envoy -> BBR -> EPP -> upstream) over Envoy direct, concurrency 1.

DESIGN.md §6: the added p50 latency of BBR + EPP at concurrency 1 at most 2.5 ms over Envoy
direct. Method: the `_epp_stack` processes, one request in flight at a time (`_load.run_load`
with concurrency 1, the same 2 KB body), batches of `batch` requests alternating `direct`, `epp`
(the EPP alone, compatible config), `chain` (the BBR then the EPP, compatible) and `chain_lean`
(the BBR then the EPP in the lean response mode, igw's default) until each listener has
`requests`, so drift hits all alike. The headline is `chain_lean`: what a user of igw's charts
and `make run` gets; the compatible chain pays one more round trip per response message
(headers, body, trailers) and is reported beside it against the same target. The same
fixed-answer upstream serves every listener. `echo_chain` (two trivial echo ext_procs, request
side only) is the floor any two Python ext_proc hops pay; `echo_chain_lean` is the same with the
second echo also answering the response headers: the floor of the very gRPC messages the lean
chain exchanges (the lean EPP gets the response headers too, and Envoy holds the answer until
it replies: a round trip a request-side-only floor does not pay, 0.27 ms p50 at concurrency 1
in the run that introduced it). `chain_lean - echo_chain_lean` is therefore our own work over
the Python floor, with its own target (DESIGN.md §6: at most 0.5 ms p50); `chain_lean -
echo_chain` is shown beside it.
Latency is measured by the client from sending the request to reading the whole answer; the
added figure is the difference of the percentiles (p50 of chain minus p50 of direct; likewise
p99). Every answer must be a 200 and the EPP must have counted every EPP and chain request.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import _load
from bench._epp_common import Section, percentile, table, verdict
from bench._epp_stack import Stack
from bench._errors import BenchmarkError

TARGET_P50_MS = 2.5
OWN_WORK_TARGET_P50_MS = 0.5
_OWN_WORK = ("chain_lean", "echo_chain_lean")
"""Our own work over the Python floor: the lean chain minus two trivial echo hops exchanging the
same gRPC messages."""
LISTENERS = ("direct", "echo_chain", "echo_chain_lean", "epp", "chain", "chain_lean")
_CHAINS = ("chain", "chain_lean")
_NO_EPP = ("direct", "echo_chain", "echo_chain_lean")
_TARGETS = {
    **{(name, "direct"): TARGET_P50_MS for name in _CHAINS},
    _OWN_WORK: OWN_WORK_TARGET_P50_MS,
}


@dataclass(frozen=True, slots=True)
class LatencySettings:
    requests: int
    batch: int = 50
    body_bytes: int = 2048


async def measure(stack: Stack, s: LatencySettings) -> dict[str, list[float]]:
    """Listener -> every request's latency in seconds."""
    latencies: dict[str, list[float]] = {name: [] for name in LISTENERS}
    body = _load.chat_body(s.body_bytes)
    served = stack.epp_requests()
    async with _load.new_session(1) as session:
        for name in LISTENERS:  # warm-up: connections, caches
            await _load.run_load(session, stack.url(name), body, requests=20, concurrency=1)
        served = stack.epp_requests()
        sent = 0
        while len(latencies["direct"]) < s.requests:
            for name in LISTENERS:
                load = await _load.run_load(
                    session, stack.url(name), body, requests=s.batch, concurrency=1
                )
                if bad := {k: n for k, n in load.statuses.items() if k != 200}:
                    raise BenchmarkError(f"latency {name}: unexpected HTTP statuses {bad}")
                latencies[name].extend(load.latencies_s)
                sent += 0 if name in _NO_EPP else load.requests
    if (rose := stack.epp_requests() - served) != sent:
        raise BenchmarkError(f"latency: EPP counted {rose} requests, {sent} were sent through it")
    return latencies


def report(latencies: dict[str, list[float]], s: LatencySettings) -> Section:
    p = {
        name: (percentile(v, 0.5) * 1000, percentile(v, 0.99) * 1000)
        for name, v in latencies.items()
    }
    rows = [[name, f"{p[name][0]:.2f}", f"{p[name][1]:.2f}"] for name in LISTENERS]
    added = []
    pairs = (
        *((n, "direct") for n in ("echo_chain", "echo_chain_lean", "epp", *_CHAINS)),
        ("chain_lean", "echo_chain"),
        _OWN_WORK,
    )
    for name, base in pairs:
        p50, p99 = p[name][0] - p[base][0], p[name][1] - p[base][1]
        target = _TARGETS.get((name, base))
        added.append([
            f"{name} - {base}", f"{p50:+.2f}", f"{p99:+.2f}",
            f"<= {target} ms p50" if target is not None else "(informative)",
            verdict(p50, target) if target is not None else "-",
        ])  # fmt: skip
    body = "\n\n".join(
        [
            table(["listener", "p50 ms", "p99 ms"], rows),
            table(["added latency", "p50 ms", "p99 ms", "target", "verdict"], added),
        ]
    )
    settings = (
        f"concurrency 1, {len(latencies['direct'])} requests per listener in alternating "
        f"batches of {s.batch}, {s.body_bytes}-byte body"
    )
    lean, own = added[-3], added[-1]
    summary = (
        "Added p50 latency, BBR + EPP (lean response mode), concurrency 1",
        f"{lean[1]} ms", lean[3], lean[4],
    )  # fmt: skip
    more = ((
        "Our own work: lean chain minus two echo hops (same messages), p50, concurrency 1",
        f"{own[1]} ms", own[3], own[4],
    ),)  # fmt: skip
    title = "Added latency of BBR + EPP over Envoy direct, concurrency 1"
    return Section(title, body, settings, summary, more)
