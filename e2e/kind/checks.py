"""The kind suite's checks of traffic and metrics (step 8 of `run.py`, before the HA checks).

Through a `kubectl port-forward` to the Gateway's Envoy Service: completions, chat, a streamed chat
and embeddings answer 200 with the client-facing model name through gateway.yaml's `model-name`
rule, and both data-parallel ports serve; then the adapter checks (`adapters.py`): routing on the
BBR's base-model header and `GET /v1/models`. Through one to the EPP leader's pod (found on its
Lease: a standby has served nothing), `/metrics` has the EPP's metrics.
"""

from __future__ import annotations

import json
import time

from e2e.kind.adapters import check_adapter_routing, check_models_list
from e2e.kind.client import Answer, completion, gateway, port_forward, request, wait_until_answering
from e2e.kind.ha import wait_for_epp
from e2e.kind.tools import DP_PORTS, MODEL, NAMESPACE, ROUTE_HEADER, Runner, SuiteError, log

# Names the EPP must export after good traffic (upstream's §7 list, the ones this slice checks).
EPP_METRICS = (
    "inference_objective_request_total",
    "inference_objective_request_duration_seconds",
    "inference_objective_input_tokens",
    "inference_objective_output_tokens",
    "inference_pool_ready_pods",
    "inference_pool_average_kv_cache_utilization",
    "inference_pool_average_queue_size",
    "inference_extension_scheduler_e2e_duration_seconds",
    "inference_extension_info",
)


def expect_ok(name: str, answer: Answer, ports: set[str]) -> dict[str, object]:
    if answer.status != 200:
        raise SuiteError(f"{name}: {answer.status} {answer.body[:300]!r}")
    ports.add(answer.headers.get("x-inference-port", "?"))
    body: dict[str, object] = json.loads(answer.body)
    if body.get("model") != MODEL:
        raise SuiteError(f"{name}: model {body.get('model')!r}, expected {MODEL!r}")
    rule = answer.headers.get(ROUTE_HEADER)
    if rule != "model-name":
        raise SuiteError(f"{name}: served through rule {rule!r}, expected 'model-name'")
    log(f"ok: {name} (port {answer.headers.get('x-inference-port')})")
    return body


def check_traffic(base: str) -> None:
    ports: set[str] = set()
    completions = completion(MODEL)
    chat = {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 16}
    wait_until_answering(f"{base}/v1/completions", completions)
    expect_ok("completions", request(f"{base}/v1/completions", completions), ports)
    expect_ok("chat completions", request(f"{base}/v1/chat/completions", chat), ports)
    multi_turn = {
        **chat,
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi, how can I help?"},
            {"role": "user", "content": "Review this dish."},
        ],
    }
    expect_ok(
        "chat completions, multi-turn", request(f"{base}/v1/chat/completions", multi_turn), ports
    )
    for name, text in (("embeddings, string", "food"), ("embeddings, list", ["food", "review"])):
        expect_ok(name, request(f"{base}/v1/embeddings", {"model": MODEL, "input": text}), ports)
    streamed = request(f"{base}/v1/chat/completions", {**chat, "stream": True})
    events = [line for line in streamed.body.decode().splitlines() if line.startswith("data: ")]
    if streamed.status != 200 or not events or events[-1] != "data: [DONE]":
        raise SuiteError(
            f"streamed chat: {streamed.status}, {len(events)} events, last {events[-1:]}"
        )
    first = json.loads(events[0].removeprefix("data: "))
    if first.get("model") != MODEL:
        raise SuiteError(f"streamed chat: model {first.get('model')!r}, expected {MODEL!r}")
    ports.add(streamed.headers.get("x-inference-port", "?"))
    log(f"ok: streamed chat completions ({len(events)} events)")
    for i in range(60):
        if {str(p) for p in DP_PORTS} <= ports:
            break
        prompt = {**completions, "prompt": f"request {i}: a different prefix each time"}
        expect_ok(f"completions #{i}", request(f"{base}/v1/completions", prompt), ports)
    if not {str(p) for p in DP_PORTS} <= ports:
        raise SuiteError(f"data-parallel ports served: {sorted(ports)}, expected {list(DP_PORTS)}")
    log(f"ok: both data-parallel ports served ({sorted(ports)})")
    bad = request(f"{base}/v1/completions", {"model": MODEL, "prompt": 42})
    log(f"ok: bad request answered {bad.status}")


def check_metrics(url: str) -> None:
    answer = request(url)
    if answer.status != 200:
        raise SuiteError(f"EPP /metrics: {answer.status}")
    text = answer.body.decode()
    names = {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and line[0] != "#"
    }
    missing = [name for name in EPP_METRICS if not any(n.startswith(name) for n in names)]
    if missing:
        raise SuiteError(f"EPP /metrics lacks {missing}")
    log(f"ok: EPP metrics present ({len(EPP_METRICS)} names)")


def _metrics_until_present(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check_metrics(url)
        except (OSError, SuiteError):
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
        else:
            return


def run_checks(r: Runner) -> None:
    """Traffic, adapters and the model list through the gateway; then the leader's metrics."""
    with gateway(r) as base:
        if base is not None:
            check_traffic(base)
            check_adapter_routing(base)
            check_models_list(base)
    leader = wait_for_epp(r, timeout_s=60).leader
    with port_forward(r, NAMESPACE, f"pod/{leader}", 9090) as local:
        if not r.dry_run:
            _metrics_until_present(f"http://127.0.0.1:{local}/metrics")
