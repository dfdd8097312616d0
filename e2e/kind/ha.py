"""The kind suite's EPP availability checks: leader failover and fail-open (the last two steps).

The EPP runs `EPP_REPLICAS` replicas, so charts/epp turns on leader election: the replicas elect a
leader on the Lease `EPP_LEASE`, whose `spec.holderIdentity` is controller-runtime's identity
`<hostname>_<uuid>` (a pod's hostname is its name). Only the leader is Ready, so the EPP Service
sends the gateway to it alone; a standby stays un-Ready by design. That is also why nothing here
uses `kubectl rollout status` or `helm --wait` on the EPP: under the Recreate strategy both wait
for every replica to be Ready, which a standby never is. `wait_for_epp` waits for what HA
promises instead: `EPP_REPLICAS` live pods, the Lease held by one of them, and that one Ready.

* `check_failover`: delete the leader pod; within `FAILOVER_TIMEOUT_S` the Lease names a former
  standby and requests through the gateway answer 200 again; then the replacement pod joins.
* `check_fail_open`: scale the EPP to 0; requests through the gateway still answer 200 (the pool's
  `endpointPickerRef.failureMode` is FailOpen); then scale back and wait for a leader. The EPP is
  restored even when the check fails, so a `--keep` cluster stays usable.

Both run after the traffic and metrics checks, which need one steady leader.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from e2e.kind.client import Answer, completion, describe, gateway, request, wait_until_answering
from e2e.kind.tools import (
    EPP_DEPLOYMENT,
    EPP_LEASE,
    EPP_REPLICAS,
    EPP_SELECTOR,
    MODEL,
    NAMESPACE,
    Runner,
    SuiteError,
    log,
)

FAILOVER_TIMEOUT_S = 60.0  # the Lease lasts 15 s; a deleted leader releases it at once
EPP_START_TIMEOUT_S = 180.0
FAIL_OPEN_SETTLE_S = 30.0  # Envoy learns that the EPP Service has no endpoints left
FAIL_OPEN_REQUESTS = 3

# Caveat: fail-open with a full-duplex ext_proc depends on the gateway implementation. Envoy
# (1.40, measured) accepts failure_mode_allow with FULL_DUPLEX_STREAMED but fails open only until
# the first body chunk was sent, which in full duplex is before a dead processor is noticed; a
# gateway must also stop sending to the dead EPP, and without the EPP's destination header the
# InferencePool backend has to pick a pod by itself. This check
# therefore states what the pinned Envoy Gateway + AI Gateway do, and its failure says so.
FAIL_OPEN_CAVEAT = (
    "the pool's endpointPickerRef.failureMode is FailOpen, but whether a gateway routes without "
    "its EPP is up to the gateway implementation: Envoy fails open on a FULL_DUPLEX_STREAMED "
    "request body only before its first chunk was sent (upstream GIE issue #1266), and how the "
    "InferencePool backend picks a pod without the EPP's header is the Envoy Gateway/AI "
    "Gateway pinned in run.py; this check states what that gateway does"
)


@dataclass(frozen=True, slots=True)
class EppPod:
    name: str
    ready: bool
    deleting: bool


@dataclass(frozen=True, slots=True)
class Leadership:
    """The EPP in its HA steady state: the Ready Lease holder and the other live replicas."""

    leader: str
    standbys: tuple[str, ...]


def parse_pods(text: str) -> list[EppPod]:
    """The pods of `kubectl get pods -o json`: name, Ready condition, deletion under way."""
    pods = []
    for item in json.loads(text).get("items", []):
        conditions = item.get("status", {}).get("conditions", [])
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
        metadata = item["metadata"]
        pods.append(EppPod(metadata["name"], ready, "deletionTimestamp" in metadata))
    return pods


def holder_pod(holder_identity: str) -> str | None:
    """The pod named by a Lease's `holderIdentity` (`<pod>_<uuid>`); None once released ("")."""
    pod = holder_identity.strip().partition("_")[0]
    return pod or None


def leadership(pods: Sequence[EppPod], holder_identity: str) -> Leadership | None:
    """The steady state, or None while replicas are missing or the holder is not a Ready pod."""
    live = {pod.name: pod for pod in pods if not pod.deleting}
    leader = holder_pod(holder_identity)
    if len(live) != EPP_REPLICAS or leader not in live or not live[leader].ready:
        return None
    return Leadership(leader, tuple(sorted(name for name in live if name != leader)))


def _pods_text(pods: Sequence[EppPod]) -> str:
    shown = [
        f"{p.name} ({'ready' if p.ready else 'not ready'}{', deleting' if p.deleting else ''})"
        for p in pods
    ]
    return ", ".join(shown) or "none"


def observe(r: Runner) -> tuple[list[EppPod], str]:
    """The EPP's pods and its Lease's holderIdentity ("" while there is no Lease or holder)."""
    pods = r.run(
        ["kubectl", "get", "pods", "-n", NAMESPACE, "-l", EPP_SELECTOR, "-o", "json"],
        capture=True,
    )
    # A field selector answers an empty list, not an error, before the first replica makes it.
    holder = r.run(
        ["kubectl", "get", "lease", "-n", NAMESPACE, f"--field-selector=metadata.name={EPP_LEASE}",
         "-o", "jsonpath={.items[*].spec.holderIdentity}"],
        capture=True,
    )  # fmt: skip
    return (parse_pods(pods) if pods.strip() else []), holder.strip()


def wait_for_epp(r: Runner, timeout_s: float = EPP_START_TIMEOUT_S) -> Leadership:
    """Waits for the HA steady state (module docstring); placeholders in a dry run."""
    deadline = time.monotonic() + timeout_s
    while True:
        pods, holder = observe(r)
        if r.dry_run:
            return Leadership("<leader>", ("<standby>",))
        state = leadership(pods, holder)
        if state is not None:
            return state
        if time.monotonic() > deadline:
            raise SuiteError(
                f"EPP: no Ready leader among {EPP_REPLICAS} replicas within {timeout_s:.0f} s: "
                f"pods {_pods_text(pods)}; Lease {EPP_LEASE} holder {holder!r}"
            )
        time.sleep(3)


def _try(base: str) -> Answer | str:
    try:
        return request(f"{base}/v1/completions", completion(MODEL), timeout_s=10)
    except OSError as exc:
        return str(exc)


def _ok(answer: Answer | str) -> bool:
    return isinstance(answer, Answer) and answer.status == 200


def _text(answer: Answer | str) -> str:
    return answer if isinstance(answer, str) else describe(answer)


def _failover_problem(before: Leadership, holder: str, last: Answer | str | None) -> str:
    waited = f"{FAILOVER_TIMEOUT_S:.0f} s after deleting the leader pod {before.leader}"
    if holder == before.leader:
        return f"{waited}, the Lease {EPP_LEASE} still names it"
    if holder not in before.standbys:
        return f"{waited}, the Lease names {holder!r}, expected a standby {list(before.standbys)}"
    return f"{waited}, the Lease names {holder} but requests fail: {_text(last or 'none sent')}"


def _await_failover(r: Runner, base: str | None, before: Leadership) -> tuple[str, float]:
    """Polls until a standby holds the Lease and a request succeeds: (new leader, seconds)."""
    started = time.monotonic()
    last: Answer | str | None = None
    while True:
        _, identity = observe(r)
        if base is None:  # dry run
            return before.standbys[0], 0.0
        holder = holder_pod(identity) or ""
        if holder in before.standbys:
            last = _try(base)
            if _ok(last):
                return holder, time.monotonic() - started
        if time.monotonic() - started > FAILOVER_TIMEOUT_S:
            raise SuiteError(f"leader failover: {_failover_problem(before, holder, last)}")
        time.sleep(1)


def check_failover(r: Runner) -> None:
    """Deletes the leader pod; a standby takes the Lease and requests succeed again."""
    before = wait_for_epp(r, timeout_s=60)
    if not r.dry_run:
        log(f"ok: EPP leader {before.leader} (Ready), standbys {list(before.standbys)}")
    with gateway(r) as base:
        r.run(["kubectl", "delete", "pod", "-n", NAMESPACE, before.leader, "--wait=false"])
        leader, seconds = _await_failover(r, base, before)
        if base is not None:
            log(f"ok: leader failover: {before.leader} deleted, {leader} leads and requests "
                f"answer 200 after {seconds:.1f} s")  # fmt: skip
    after = wait_for_epp(r)  # the Deployment's replacement pod joins as a standby
    if not r.dry_run:
        log(f"ok: EPP back to {EPP_REPLICAS} replicas (leader {after.leader})")


def _await_no_epp(r: Runner) -> None:
    deadline = time.monotonic() + EPP_START_TIMEOUT_S
    while True:
        pods, _ = observe(r)
        if r.dry_run or not pods:
            return
        if time.monotonic() > deadline:
            raise SuiteError(f"EPP scaled to 0, but pods remain: {_pods_text(pods)}")
        time.sleep(2)


def _expect_fail_open(base: str) -> None:
    deadline = time.monotonic() + FAIL_OPEN_SETTLE_S
    answer = _try(base)
    while not _ok(answer) and time.monotonic() < deadline:
        time.sleep(2)
        answer = _try(base)
    answers = [answer] + [_try(base) for _ in range(FAIL_OPEN_REQUESTS - 1)]
    failed = [_text(a) for a in answers if not _ok(a)]
    if failed:
        raise SuiteError(
            f"fail-open: with the EPP scaled to 0, requests through the gateway answered "
            f"{failed[0]} ({len(failed)} of {len(answers)} failed; retried for "
            f"{FAIL_OPEN_SETTLE_S:.0f} s), expected 200. Note: {FAIL_OPEN_CAVEAT}"
        )
    log(f"ok: fail-open: with no EPP pod, {len(answers)} requests through the gateway answer 200")


def check_fail_open(r: Runner) -> None:
    """Scales the EPP to 0: requests still succeed; then restores it (also after a failure)."""
    with gateway(r) as base:
        scale = ["kubectl", "scale", "-n", NAMESPACE, f"deployment/{EPP_DEPLOYMENT}"]
        r.run([*scale, "--replicas=0"])
        failure: SuiteError | None = None
        try:
            _await_no_epp(r)
            if base is not None:
                _expect_fail_open(base)
        except SuiteError as exc:
            failure = exc
            log(f"fail-open check failed; restoring the EPP first: {exc}")
        r.run([*scale, f"--replicas={EPP_REPLICAS}"])
        after = wait_for_epp(r)
        if failure is not None:
            raise failure
        if base is not None:
            wait_until_answering(f"{base}/v1/completions", completion(MODEL), timeout_s=60)
            log(f"ok: EPP restored to {EPP_REPLICAS} replicas (leader {after.leader}), serving")
