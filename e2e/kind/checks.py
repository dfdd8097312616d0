"""The kind suite's checks through the gateway (step 8 of `run.py`).

Through a `kubectl port-forward` to the Gateway's Envoy Service: completions, chat, a streamed chat
and embeddings answer 200 with the client-facing model name and both data-parallel ports serve;
through one to the EPP's Service, `/metrics` has the EPP's metrics.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from e2e.kind.tools import (
    DP_PORTS,
    EG_NAMESPACE,
    GATEWAY,
    MODEL,
    NAMESPACE,
    POOL,
    Runner,
    SuiteError,
    log,
)

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def request(url: str, payload: object | None = None, *, timeout_s: float = 60) -> Answer:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        url, data=data, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
            headers = {k.lower(): v for k, v in resp.headers.items()}
            return Answer(resp.status, headers, resp.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def wait_until_answering(url: str, payload: object, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = request(url, payload, timeout_s=10)
        except OSError as exc:
            last = str(exc)
        else:
            if answer.status == 200:
                return
            last = f"{answer.status} {answer.body[:200]!r}"
        time.sleep(2)
    raise SuiteError(f"{url} did not answer 200 within {timeout_s:.0f} s: {last}")


def expect_ok(name: str, answer: Answer, ports: set[str]) -> dict[str, object]:
    if answer.status != 200:
        raise SuiteError(f"{name}: {answer.status} {answer.body[:300]!r}")
    ports.add(answer.headers.get("x-inference-port", "?"))
    body: dict[str, object] = json.loads(answer.body)
    if body.get("model") != MODEL:
        raise SuiteError(f"{name}: model {body.get('model')!r}, expected {MODEL!r}")
    log(f"ok: {name} (port {answer.headers.get('x-inference-port')})")
    return body


@contextmanager
def port_forward(r: Runner, namespace: str, target: str, remote: int) -> Iterator[int]:
    local = free_port()
    r.start(["kubectl", "port-forward", "-n", namespace, target, f"{local}:{remote}"])
    try:
        yield local
    finally:
        r.stop_all()


def check_traffic(base: str) -> None:
    ports: set[str] = set()
    completions = {
        "model": MODEL,
        "prompt": "Write as if you were a critic: San Francisco",
        "max_tokens": 16,
    }
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


def run_checks(r: Runner) -> None:
    selector = (
        f"gateway.envoyproxy.io/owning-gateway-namespace={NAMESPACE},"
        f"gateway.envoyproxy.io/owning-gateway-name={GATEWAY}"
    )
    envoy_service = r.run(
        ["kubectl", "get", "service", "-n", EG_NAMESPACE, "-l", selector,
         "-o", "jsonpath={.items[0].metadata.name}"],
        capture=True,
    ).strip()  # fmt: skip
    if r.dry_run:
        envoy_service = "<envoy-service>"
    with port_forward(r, EG_NAMESPACE, f"service/{envoy_service}", 80) as local:
        if not r.dry_run:
            check_traffic(f"http://127.0.0.1:{local}")
    with port_forward(r, NAMESPACE, f"service/{POOL}-epp", 9090) as local:
        if not r.dry_run:
            wait_until_metrics = time.monotonic() + 30
            while True:
                try:
                    check_metrics(f"http://127.0.0.1:{local}/metrics")
                    break
                except (OSError, SuiteError):
                    if time.monotonic() > wait_until_metrics:
                        raise
                    time.sleep(2)
