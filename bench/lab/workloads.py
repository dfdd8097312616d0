"""The lab's workloads: seeded request sequences and the fleet each one runs on.

Every workload is a function of (random generator, number of requests, pods) returning the
requests in arrival order, plus the fleet's shape (KV blocks, adapters, a slow pod) and a
nominal capacity that scales its rate ladder. Text is built from a fixed word list by a seeded
`random.Random`, so a seed names one exact sequence of request bodies; no dataset is downloaded.
Lengths are in the simulator's tokens (4 bytes of text each, `igw.sim.tokenizer`).

From peers.md §3 and upstream-gie.md §11.4:

* `prefix-high`: shared-prefix groups in the shape of upstream's benchmark (groups of 5
  prompts with long system prompts: 1,500 tokens, questions of 100, 48 output tokens), scaled
  to what a run of a few minutes can warm: 4 groups per pod (32 on 8 pods; upstream runs 150
  for much longer). Each pod's KV cache holds twice its share of the system prompts plus room
  for 8 running requests (1,600 blocks), so a router that keeps each group on one pod keeps
  them all cached, and one that copies every group everywhere thrashes. Requests pick a
  (group, prompt) uniformly.
* `prefix-low`: the same shape with 1 group per pod and the preset's full KV cache (307k tokens
  a pod): everything fits everywhere, so even round-robin warms up; the gap left is load.
* `multi-turn`: chats of 5 turns, each with its own 300-token system prompt, 80-token user
  turns and 120-token assistant replies (synthesised, as the simulator does not register decode
  blocks); turn k+1 of a chat comes after every other active chat's turn k, so the history
  grows while other traffic passes.
* `sharegpt`: a ShareGPT-like length mix with little sharing: prompt lengths lognormal (median
  250 tokens, sigma 1.0, 16-3,000), outputs lognormal (median 64, sigma 0.8, 8-384), a 16-token
  common preamble only.
* `multi-lora`: 16 adapters with Zipf(1.1) popularity over the pods, at most 2 resident per pod
  (`max-loras 2`, 150 ms to load one); each adapter has its own 400-token system prompt.
* `slow-pod`: the sharegpt mix on a fleet whose first pod's GPU runs at 40 % of the others'
  speed (a heterogeneous accelerator).
* `agentic`: agent sessions of tool-call loops. Every session starts from the same 1,500-token
  tool catalogue and its own 500-token task, then takes 8 steps; each step adds a tool result
  (150 tokens) and the agent's call (50 tokens) to the context, and asks for a short answer (32
  tokens). A third of the steps fan out into 3 parallel sub-calls (the same context plus a
  40-token sub-task each) sent at the same instant (`LabRequest.with_previous`). As in
  `multi-turn`, step k+1 of a session comes after every other active session's step k: the
  session's own idle gap while its tool runs. Arrivals are Poisson per step, not per request.
* `heterogeneous`: the sharegpt mix on a fleet of two GPU generations, half the pods at half the
  others' speed (say A100s beside H100s).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
BYTES_PER_TOKEN = 4
_WORDS = [
    "the",
    "model",
    "serves",
    "requests",
    "from",
    "a",
    "pool",
    "of",
    "accelerators",
    "while",
    "the",
    "gateway",
    "picks",
    "one",
    "endpoint",
    "for",
    "each",
    "prompt",
    "and",
    "keeps",
    "latency",
    "low",
    "under",
    "load",
    "cache",
    "prefix",
    "queue",
    "token",
    "batch",
    "decode",
    "prefill",
    "memory",
    "block",
    "scheduler",
    "policy",
    "adapter",
    "weight",
    "tensor",
    "kernel",
    "stream",
    "client",
    "server",
    "metric",
    "budget",
    "context",
    "window",
    "history",
    "answer",
    "question",
    "system",
    "user",
    "assistant",
    "review",
    "summary",
    "report",
    "table",
    "figure",
    "result",
    "method",
    "data",
    "sample",
    "average",
    "median",
    "tail",
]


@dataclass(frozen=True, slots=True)
class LabRequest:
    body: bytes
    group: str
    """What shares a prefix: the prompt group, the chat, the adapter; "" for none."""
    max_tokens: int
    with_previous: bool = False
    """Sent at the same instant as the request before it (a parallel sub-call)."""


def _plain_pods(pods: int) -> list[dict[str, object]]:
    return [{} for _ in range(pods)]


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    title: str
    make: Callable[[random.Random, int, int], list[LabRequest]]
    """(rng, requests, pods) -> the requests in order."""
    capacity_rps_per_pod: float
    """A pod's rate at load factor 1.0 in real time (time scale 1). Set from short runs of the
    lab so that the default steps (0.5, 1, 2) go from light load to past what a cache- or
    adapter-blind router sustains; the prefix workloads' 1.0 is about one pod's rate when no
    request hits the cache."""
    pods: Callable[[int], list[dict[str, object]]] = _plain_pods
    """pods -> each pod's igw-sim options beyond the shared ones."""
    prefix_workload: bool = False
    """Requests of a group share a long prefix: affinity is reported and the targets apply."""


def text(rng: random.Random, tokens: int, head: str = "") -> str:
    """About `tokens` tokens of words; starts with `head` (which makes it unique)."""
    size = tokens * BYTES_PER_TOKEN
    parts = [head] if head else []
    length = len(head)
    while length < size:
        word = rng.choice(_WORDS)
        parts.append(word)
        length += len(word) + 1
    return " ".join(parts)[:size]


def _body(messages: list[dict[str, str]], max_tokens: int, model: str = MODEL) -> bytes:
    return json.dumps(
        {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()


def _lognormal(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    return max(low, min(high, round(rng.lognormvariate(math.log(median), sigma))))


def _shared_prefix(groups_per_pod: int) -> Callable[[random.Random, int, int], list[LabRequest]]:
    def make(rng: random.Random, n: int, pods: int) -> list[LabRequest]:
        groups = groups_per_pod * pods
        systems = [text(rng, 1500, f"Group {g} instructions:") for g in range(groups)]
        questions = [
            [text(rng, 100, f"Question {g}.{q}:") for q in range(5)] for g in range(groups)
        ]
        out = []
        for _ in range(n):
            g, q = rng.randrange(groups), rng.randrange(5)
            messages = [
                {"role": "system", "content": systems[g]},
                {"role": "user", "content": questions[g][q]},
            ]
            out.append(LabRequest(_body(messages, 48), f"group-{g}", 48))
        return out

    return make


def _multi_turn(rng: random.Random, n: int, pods: int) -> list[LabRequest]:
    turns, active = 5, 6 * pods
    out: list[LabRequest] = []
    chat = 0
    while len(out) < n:
        histories = []
        for _ in range(active):
            system = text(rng, 300, f"Chat {chat} persona:")
            histories.append((chat, [{"role": "system", "content": system}]))
            chat += 1
        for turn in range(turns):
            rng.shuffle(histories)
            for c, history in histories:
                history.append({"role": "user", "content": text(rng, 80, f"Turn {turn}:")})
                out.append(LabRequest(_body(list(history), 48), f"chat-{c}", 48))
                history.append({"role": "assistant", "content": text(rng, 120)})
    return out[:n]


def _sharegpt(rng: random.Random, n: int, _pods: int) -> list[LabRequest]:
    preamble = "You are a helpful assistant. Answer the user."
    out = []
    for i in range(n):
        prompt = _lognormal(rng, 250, 1.0, 16, 3000)
        output = _lognormal(rng, 64, 0.8, 8, 384)
        messages = [
            {"role": "system", "content": preamble},
            {"role": "user", "content": text(rng, prompt, f"Conversation {i}:")},
        ]
        out.append(LabRequest(_body(messages, output), "", output))
    return out


ADAPTERS = tuple(f"adapter-{i}" for i in range(16))


def _multi_lora(rng: random.Random, n: int, _pods: int) -> list[LabRequest]:
    weights = [1 / (rank + 1) ** 1.1 for rank in range(len(ADAPTERS))]
    systems = {a: text(rng, 400, f"Adapter {a} task:") for a in ADAPTERS}
    out = []
    for i in range(n):
        adapter = rng.choices(ADAPTERS, weights)[0]
        messages = [
            {"role": "system", "content": systems[adapter]},
            {"role": "user", "content": text(rng, 150, f"Item {i}:")},
        ]
        out.append(LabRequest(_body(messages, 48, adapter), adapter, 48))
    return out


HIGH_PRESSURE_BLOCKS = (2 * 4 * 1500 + 8 * 1700) // 16
"""Twice a pod's share of the groups' system prompts (4 groups x 1,500 tokens) plus room for 8
running requests (1,700 tokens each), in 16-token blocks: 1,600 blocks, 25,600 tokens."""


def _prefix_high_pods(pods: int) -> list[dict[str, object]]:
    return [{"num-gpu-blocks": HIGH_PRESSURE_BLOCKS} for _ in range(pods)]


def _lora_pods(pods: int) -> list[dict[str, object]]:
    modules = [f"{a}=/adapters/{a}" for a in ADAPTERS]
    return [{"lora-modules": modules, "max-loras": 2}] * pods


SLOW_POD_SPEED = 0.4


def _slow_pods(pods: int) -> list[dict[str, object]]:
    slow: dict[str, object] = {"speed": SLOW_POD_SPEED}
    return [slow, *_plain_pods(pods - 1)]


def _agentic(rng: random.Random, n: int, pods: int) -> list[LabRequest]:
    steps, active = 8, 2 * pods
    catalogue = text(rng, 1500, "Tools available to the agent:")
    out: list[LabRequest] = []
    session = 0
    while len(out) < n:
        contexts = []
        for _ in range(active):
            task = text(rng, 500, f"Session {session} task:")
            contexts.append((session, [{"role": "system", "content": catalogue + " " + task}]))
            session += 1
        for step in range(steps):
            rng.shuffle(contexts)
            for s, context in contexts:
                context.append({"role": "user", "content": text(rng, 150, f"Result {step}:")})
                if rng.random() < 1 / 3:
                    for k in range(3):
                        sub = {"role": "user", "content": text(rng, 40, f"Subtask {step}.{k}:")}
                        body = _body([*context, sub], 32)
                        out.append(LabRequest(body, f"session-{s}", 32, with_previous=k > 0))
                else:
                    out.append(LabRequest(_body(list(context), 32), f"session-{s}", 32))
                context.append({"role": "assistant", "content": text(rng, 50, "Call:")})
    return out[:n]


HETEROGENEOUS_SLOW_SPEED = 0.5


def _two_generations(pods: int) -> list[dict[str, object]]:
    older: dict[str, object] = {"speed": HETEROGENEOUS_SLOW_SPEED}
    return [older if i % 2 else {} for i in range(pods)]


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "prefix-high",
            "Shared-prefix groups, high cache pressure",
            _shared_prefix(4),
            capacity_rps_per_pod=2.3,
            pods=_prefix_high_pods,
            prefix_workload=True,
        ),
        Workload(
            "prefix-low",
            "Shared-prefix groups, low cache pressure",
            _shared_prefix(1),
            capacity_rps_per_pod=2.3,
            prefix_workload=True,
        ),
        Workload("multi-turn", "Multi-turn chat, growing history", _multi_turn, 3.0),
        Workload("sharegpt", "ShareGPT-like length mix, little sharing", _sharegpt, 5.0),
        Workload("multi-lora", "16 LoRA adapters, Zipf popularity", _multi_lora, 2.0, _lora_pods),
        Workload(
            "slow-pod", "ShareGPT-like mix, one pod at 40 % speed", _sharegpt, 4.0, _slow_pods
        ),
        Workload(
            "agentic",
            "Agent sessions: tool-call loops, parallel sub-calls, idle gaps",
            _agentic,
            capacity_rps_per_pod=3.0,
            prefix_workload=True,
        ),
        Workload(
            "heterogeneous",
            "ShareGPT-like mix, two GPU generations (half the pods at half speed)",
            _sharegpt,
            capacity_rps_per_pod=3.0,
            pods=_two_generations,
        ),
    )
}
