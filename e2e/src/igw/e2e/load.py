"""`igw-local load` (`make load`): a burst of chat requests through a running local gateway.

The requests come in prompt groups: each group shares one long system prompt (a few thousand
tokens) and differs in its user question, and the last group asks for the LoRA adapter. Afterwards
two tables show the routing: which pod (data-parallel rank included, from `x-inference-pod`)
served how many requests of each model with how many prompt and cached tokens, and where each
group went. With prefix-aware scheduling a group sticks to the pod that holds its prefix while
that pod has room, and its later requests report cached tokens; the adapter's group lands on
sim-2, the only pod serving it. Last comes the EPP's own count, `inference_objective_request_total`
from its /metrics.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from collections.abc import Mapping, Sequence

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from igw.e2e import pool

__all__ = ["GatewayDownError", "LoadPlan", "LoadResult", "format_report", "run_load"]

_FILLER = (
    "reviews are short texts that customers write after a meal and the assistant must read "
    "each one carefully judge the tone name the dishes mentioned and answer politely"
)
_WORDS = tuple(_FILLER.split())
_TIMEOUT = aiohttp.ClientTimeout(total=60)


class GatewayDownError(RuntimeError):
    """Nothing answers at the gateway's URL."""


@dataclasses.dataclass(frozen=True, slots=True)
class LoadPlan:
    url: str
    metrics_url: str
    requests: int = 48
    concurrency: int = 8
    prompt_prefix_groups: int = 4
    system_prompt_words: int = 1500
    max_tokens: int = 16

    def model_of(self, group: int) -> str:
        """The last group asks for the adapter (when there is more than one group)."""
        last = self.prompt_prefix_groups - 1
        return pool.ADAPTER if group == last and last > 0 else pool.BASE_MODEL

    def body(self, index: int) -> tuple[int, dict[str, object]]:
        group = index % self.prompt_prefix_groups
        system = f"You are assistant number {group}. " + " ".join(
            _WORDS[(group + i) % len(_WORDS)] for i in range(self.system_prompt_words)
        )
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Question {index}: what do you think of dish {index}?"},
        ]
        return group, {
            "model": self.model_of(group),
            "messages": messages,
            "max_tokens": self.max_tokens,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    group: int
    model: str
    status: int
    pod: str
    prompt_tokens: int
    cached_tokens: int
    error: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class LoadResult:
    plan: LoadPlan
    outcomes: tuple[Outcome, ...]
    seconds: float
    epp_requests_before: Mapping[tuple[str, str], float]
    epp_requests_after: Mapping[tuple[str, str], float]


async def run_load(plan: LoadPlan) -> LoadResult:
    """Send the burst; raises `GatewayDownError` when the gateway does not answer at all."""
    async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
        await _check_gateway(session, plan.url)
        before = await _epp_requests(session, plan.metrics_url)
        gate = asyncio.Semaphore(plan.concurrency)
        started = time.monotonic()
        outcomes = await asyncio.gather(
            *(_send(session, plan, index, gate) for index in range(plan.requests))
        )
        seconds = time.monotonic() - started
        after = await _epp_requests(session, plan.metrics_url)
    return LoadResult(plan, tuple(outcomes), seconds, before, after)


async def _check_gateway(session: aiohttp.ClientSession, url: str) -> None:
    try:
        async with session.get(f"{url}/", timeout=aiohttp.ClientTimeout(total=5)):
            pass
    except (aiohttp.ClientError, TimeoutError) as e:
        raise GatewayDownError(
            f"no gateway answers at {url} ({e.__class__.__name__}: {e}); "
            "start it with `make run` in another terminal, then run `make load` again"
        ) from None


async def _send(
    session: aiohttp.ClientSession, plan: LoadPlan, index: int, gate: asyncio.Semaphore
) -> Outcome:
    group, body = plan.body(index)
    model = str(body["model"])
    async with gate:
        try:
            async with session.post(f"{plan.url}/v1/chat/completions", json=body) as response:
                text = await response.text()
                pod = response.headers.get("x-inference-pod", "-")
                if response.status != 200:
                    return Outcome(group, model, response.status, pod, 0, 0, text.strip()[:120])
                usage = (await response.json()).get("usage") or {}
        except (aiohttp.ClientError, TimeoutError) as e:
            return Outcome(group, model, 0, "-", 0, 0, f"{e.__class__.__name__}: {e}")
    details = usage.get("prompt_tokens_details") or {}
    return Outcome(
        group, model, 200, pod, int(usage.get("prompt_tokens", 0)),
        int(details.get("cached_tokens", 0)),
    )  # fmt: skip


async def _epp_requests(
    session: aiohttp.ClientSession, metrics_url: str
) -> dict[tuple[str, str], float]:
    """`inference_objective_request_total` by (model_name, target_model_name); {} if unreadable."""
    try:
        async with session.get(metrics_url, timeout=aiohttp.ClientTimeout(total=5)) as response:
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return {}
    counts: dict[tuple[str, str], float] = collections.defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "inference_objective_request_total":
                key = (
                    sample.labels.get("model_name", ""),
                    sample.labels.get("target_model_name", ""),
                )
                counts[key] += sample.value
    return dict(counts)


def format_report(result: LoadResult) -> str:
    """The tables `igw-local load` prints."""
    ok = [o for o in result.outcomes if o.status == 200]
    rate = len(result.outcomes) / result.seconds if result.seconds else 0.0
    lines = [
        (
            f"{len(result.outcomes)} requests in {result.seconds:.1f} s ({rate:.1f}/s), "
            f"{len(ok)} answered 200, concurrency {result.plan.concurrency}"
        ),
        "",
        *_table(
            ("pod (x-inference-pod)", "model", "requests", "prompt tokens", "cached tokens"),
            _by_pod(ok),
        ),
        "",
        *_table(("prompt group", "model", "served by"), _by_group(result.outcomes)),
        "",
        *_epp_lines(result),
    ]
    failures = [o for o in result.outcomes if o.status != 200]
    if failures:
        first = failures[0]
        lines += ["", f"{len(failures)} failed, e.g.: status {first.status} {first.error}"]
    return "\n".join(lines)


def _by_pod(outcomes: Sequence[Outcome]) -> list[tuple[str, ...]]:
    sums: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    for o in outcomes:
        row = sums[(o.pod, o.model)]
        row[0] += 1
        row[1] += o.prompt_tokens
        row[2] += o.cached_tokens
    return [(pod, model, *map(str, row)) for (pod, model), row in sorted(sums.items())]


def _by_group(outcomes: Sequence[Outcome]) -> list[tuple[str, ...]]:
    groups: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    models: dict[int, str] = {}
    for o in outcomes:
        groups[o.group][o.pod if o.status == 200 else f"error {o.status}"] += 1
        models[o.group] = o.model
    return [
        (str(g), models[g], ", ".join(f"{pod} x{n}" for pod, n in sorted(groups[g].items())))
        for g in sorted(groups)
    ]


def _epp_lines(result: LoadResult) -> list[str]:
    if not result.epp_requests_after:
        return [f"EPP metrics unreadable at {result.plan.metrics_url}"]
    rows = [
        (model, target, f"{total:g}", f"{total - result.epp_requests_before.get(key, 0.0):g}")
        for key, total in sorted(result.epp_requests_after.items())
        for model, target in (key,)
    ]
    header = ("model_name", "target_model_name", "total", "this run")
    return [
        f"EPP inference_objective_request_total ({result.plan.metrics_url}):",
        *_table(header, rows),
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]
