"""igw.sim.fleet: real engines behind real ports, DP ranks, several pods in one process."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from igw.common.testing.ports import hold_consecutive
from igw.sim.config import OPTIONS, ConfigError, SimConfig, build
from igw.sim.engine import Engine
from igw.sim.fleet import Fleet, plan
from igw.sim.testing import wait_until

NO_ENV: dict[str, str] = {}


def config(**values: Any) -> SimConfig:
    """A configuration from flag values (`max_num_seqs="2"`), host 127.0.0.1, tiny preset."""
    by_name = {option.name: option for option in OPTIONS}
    flags = {"host": "127.0.0.1", "preset": "tiny"}
    flags |= {k.replace("_", "-"): by_name[k.replace("_", "-")].parse(v) for k, v in values.items()}
    return build(flags, None, NO_ENV)


@contextlib.asynccontextmanager
async def running(sim_config: SimConfig) -> AsyncIterator[Fleet]:
    fleet = Fleet(plan(sim_config, hostname="host"))
    await fleet.start()
    try:
        yield fleet
    finally:
        await fleet.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def test_plan_names_ranks_and_ports() -> None:
    plans = plan(config(port="9000", pods="2", data_parallel_size="2"), hostname="host")
    assert [(p.settings.pod_name, p.settings.port, p.settings.rank) for p in plans] == [
        ("host-9000-rank-0", 9000, 0),
        ("host-9000-rank-1", 9001, 1),
        ("host-9002-rank-0", 9002, 0),
        ("host-9002-rank-1", 9003, 1),
    ]


def test_plan_applies_the_pods_options_to_the_preset() -> None:
    sim_config = config(
        model="my-model",
        served_model_name="served",
        max_num_seqs="3",
        lora_modules="a=/x",
        seed="5",
        failure_injection_rate="10",
        pods="2",
        pod_name="p",
    )
    first, second = plan(sim_config, hostname="host")
    assert (first.engine.model_name, first.engine.max_num_seqs) == ("my-model", 3)
    assert first.engine.max_model_len == 4096, "the tiny preset's context"
    assert (first.settings.model, first.settings.model_root) == ("served", "my-model")
    assert first.settings.adapters == {"a": "/x"}
    assert (first.settings.pod_name, second.settings.pod_name) == ("p-0", "p-1")
    assert (first.failure_rate, first.seed, second.seed) == (10.0, 5, 6)


def test_an_invalid_engine_option_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="max_model_len"):
        plan(config(max_model_len="99999", num_gpu_blocks="4"))


async def test_dp_ranks_serve_independent_engines_on_consecutive_ports(
    session: aiohttp.ClientSession,
) -> None:
    held = hold_consecutive(3)  # bound beside by the ranks, taken by nobody else meanwhile
    base = held[0].getsockname()[1]
    body = {"prompt": "hello", "max_tokens": 2}
    async with contextlib.AsyncExitStack() as stack:
        for sock in held:
            stack.enter_context(sock)
        sim = config(port=str(base), data_parallel_size="3", pod_name="pod")
        fleet = await stack.enter_async_context(running(sim))
        assert [pod.port for pod in fleet.pods] == [base, base + 1, base + 2]
        seen = []
        for port in (base, base + 1, base + 2):
            url = f"http://127.0.0.1:{port}/v1/completions"
            async with session.post(url, json=body) as response:
                assert response.status == 200
                seen.append(tuple(response.headers[f"x-inference-{h}"] for h in ("pod", "rank")))
        assert seen == [("pod-rank-0", "0"), ("pod-rank-1", "1"), ("pod-rank-2", "2")]
        assert all(pod.engine.snapshot().generation_tokens == 2 for pod in fleet.pods)


async def test_several_pods_in_one_process(session: aiohttp.ClientSession) -> None:
    async with running(config(port="0", pods="4")) as fleet:
        names = set()
        for pod in fleet.pods:
            async with session.get(f"{pod.url}/health") as response:
                assert response.status == 200
                names.add(response.headers["x-inference-pod"])
        assert len(names) == 4


async def test_a_pod_that_cannot_bind_stops_the_others(session: aiohttp.ClientSession) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        document = {"pods": [{"port": 0}, {"port": port}], "preset": "tiny", "host": "127.0.0.1"}
        fleet = Fleet(plan(build({}, document, NO_ENV), hostname="host"))
        with pytest.raises(OSError, match="address already in use"):
            await fleet.start()
    first = fleet.pods[0]
    assert not first.ready
    with pytest.raises(aiohttp.ClientConnectionError):
        await session.get(f"{first.url}/health")


async def test_a_repeated_prompt_reports_cached_tokens(session: aiohttp.ClientSession) -> None:
    body = {
        "messages": [{"role": "user", "content": "a long shared prefix " * 40}],
        "max_tokens": 2,
    }
    async with running(config(port="0")) as fleet:
        url = f"{fleet.pods[0].url}/v1/chat/completions"
        usages = []
        for _ in range(2):
            async with session.post(url, json=body) as response:
                usages.append((await response.json())["usage"])
    assert usages[0]["prompt_tokens_details"]["cached_tokens"] == 0
    cached = usages[1]["prompt_tokens_details"]["cached_tokens"]
    assert usages[1]["prompt_tokens"] - 16 <= cached < usages[1]["prompt_tokens"]


def gauges(text: str) -> dict[str, float]:
    wanted = ("vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc")
    families = text_string_to_metric_families(text)
    return {f.name: f.samples[0].value for f in families if f.name in wanted}


async def test_metrics_match_the_real_engine_under_load(session: aiohttp.ClientSession) -> None:
    # Slow simulated time (a step of the tiny preset takes ~0.1 s of wall time) so that the
    # engine rarely steps between a scrape and the snapshots taken around it.
    sim_config = config(port="0", max_num_seqs="3", time_scale="0.05")
    async with running(sim_config) as fleet:
        pod = fleet.pods[0]
        engine = pod.engine
        assert isinstance(engine, Engine)
        url = f"{pod.url}/v1/completions"
        prompts = ["x" * (200 * (i + 1)) for i in range(5)]
        load = [
            asyncio.create_task(session.post(url, json={"prompt": p, "max_tokens": 200}))
            for p in prompts
        ]
        await wait_until(lambda: engine.snapshot().running + engine.snapshot().waiting == 5)
        for _ in range(20):
            before = engine.snapshot()
            async with session.get(f"{pod.url}/metrics") as response:
                scraped = gauges(await response.text())
            if engine.snapshot() == before:
                break  # no engine step between the two snapshots: the scrape saw `before`
        for task in load:
            task.cancel()
        await asyncio.gather(*load, return_exceptions=True)
    assert (before.running, before.waiting) == (3, 2)
    assert before.kv_cache_usage > 0
    assert scraped == {
        "vllm:num_requests_running": before.running,
        "vllm:num_requests_waiting": before.waiting,
        "vllm:kv_cache_usage_perc": before.kv_cache_usage,
    }
