"""How the kind suite's checks reach the cluster: `kubectl port-forward`s and plain HTTP.

`gateway(r)` forwards a local port to the Gateway's Envoy Service (found by Envoy Gateway's
owning-gateway labels) and yields its base URL, or None in a dry run, where the commands are
printed and no request is sent. `request` speaks HTTP with the standard library only, so that any
Python 3.11 runs the suite; it returns every status as an `Answer` and raises only `OSError`s (no
connection, a timeout).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from e2e.kind.tools import EG_NAMESPACE, GATEWAY, NAMESPACE, Runner, SuiteError


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def request(url: str, payload: object | None = None, *, timeout_s: float = 60) -> Answer:
    """POSTs `payload` as JSON, or GETs `url` without one."""
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


def completion(
    model: str, prompt: str = "Write as if you were a critic: San Francisco"
) -> dict[str, object]:
    """A small completions request body naming `model`."""
    return {"model": model, "prompt": prompt, "max_tokens": 16}


def describe(answer: Answer) -> str:
    return f"{answer.status} {answer.body[:300]!r}"


def wait_until_answering(url: str, payload: object, timeout_s: float = 180) -> Answer:
    """Retries until `url` answers 200 (returned); raises with the last answer at the deadline."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = request(url, payload, timeout_s=10)
        except OSError as exc:
            last = str(exc)
        else:
            if answer.status == 200:
                return answer
            last = describe(answer)
        time.sleep(2)
    raise SuiteError(f"{url} did not answer 200 within {timeout_s:.0f} s: {last}")


@contextmanager
def port_forward(r: Runner, namespace: str, target: str, remote: int) -> Iterator[int]:
    """The local port kubectl bound (`:remote` lets it pick one and print it); 0 when dry."""
    process = r.start(
        ["kubectl", "port-forward", "-n", namespace, target, f":{remote}"], stdout=True
    )
    try:
        yield 0 if process is None else _forwarded_port(process)
    finally:
        r.stop_all()


def _forwarded_port(process: subprocess.Popen[bytes]) -> int:
    """From kubectl's first line, `Forwarding from 127.0.0.1:PORT -> REMOTE`. The rest of its
    output (a line per connection) is read away so the pipe never fills."""
    output = process.stdout
    if output is None:
        raise SuiteError("kubectl port-forward was started without its output")
    line = output.readline().decode(errors="replace")
    found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) ->", line)
    if found is None:
        raise SuiteError(f"kubectl port-forward did not say where it listens: {line!r}")
    threading.Thread(target=output.read, daemon=True).start()
    return int(found.group(1))


@contextmanager
def gateway(r: Runner) -> Iterator[str | None]:
    """The gateway's base URL through a port-forward to its Envoy Service (None when dry)."""
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
        yield None if r.dry_run else f"http://127.0.0.1:{local}"
