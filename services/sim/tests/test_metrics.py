"""igw.sim.metrics: vLLM's names and labels, the engine's state at scrape time, request timings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from igw.sim.engine import Engine, EngineConfig
from igw.sim.engine.api import RequestTimings
from igw.sim.metrics import PodMetrics
from igw.sim.testing import FakeEngine, serve_pod, wait_until

STATE_NAMES = {
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:gpu_cache_usage_perc": "gauge",
    "vllm:lora_requests_info": "gauge",
    "vllm:cache_config_info": "gauge",
    "vllm:prefix_cache_queries": "counter",
    "vllm:prefix_cache_hits": "counter",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "vllm:num_preemptions": "counter",
}
REQUEST_NAMES = {
    "vllm:request_success": "counter",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:time_per_output_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:request_queue_time_seconds": "histogram",
    "vllm:request_inference_time_seconds": "histogram",
    "vllm:request_prefill_time_seconds": "histogram",
    "vllm:request_decode_time_seconds": "histogram",
}


def scrape(text: str) -> dict[str, list[Sample]]:
    """Sample name -> samples, as `prometheus_client`'s own parser reads the exposition."""
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    (match,) = [s for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    return match.value


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def test_every_vllm_name_is_exposed_with_its_type_and_labels() -> None:
    metrics = PodMetrics(FakeEngine().snapshot, model_name="m", engine=2)
    families = {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}
    assert {name: families[name].type for name in families} == STATE_NAMES | REQUEST_NAMES
    for name in (*STATE_NAMES, *REQUEST_NAMES):
        if name in ("vllm:lora_requests_info", "vllm:cache_config_info"):
            continue
        for sample in families[name].samples:
            assert (sample.labels["model_name"], sample.labels["engine"]) == ("m", "2"), name
    text = metrics.render().decode()
    assert "vllm:prefix_cache_hits_total{" in text, "counters end in _total as vLLM's do"
    assert "vllm:request_success_total{" in text


async def test_state_matches_the_engine_snapshot_under_load(session: aiohttp.ClientSession) -> None:
    engine = FakeEngine(max_num_seqs=3, max_waiting=10, num_gpu_blocks=40, max_loras=4)
    engine.loras += ["sql-lora", "chat-lora"]
    engine.gate.clear()  # hold the load still while we look at it
    async with serve_pod(engine) as pod:
        url = f"{pod.url}/v1/completions"

        async def request(model: str, prompt: str) -> None:
            body = {"model": model, "prompt": prompt, "max_tokens": 20}
            async with session.post(url, json=body) as response:
                assert response.status == 200

        load = [
            request("sql-lora", "a" * 100),
            request("fake-model", "b" * 300),
            request("fake-model", "c" * 40),
            request("chat-lora", "d" * 60),
            request("fake-model", "e" * 20),
        ]
        tasks = [asyncio.create_task(coroutine) for coroutine in load]
        await wait_until(lambda: len(engine.running) + len(engine.waiting) == 5)
        async with session.get(f"{pod.url}/metrics") as response:
            samples = scrape(await response.text())
        snap = engine.snapshot()
        engine.gate.set()
        await asyncio.gather(*tasks)
    assert value(samples, "vllm:num_requests_running") == snap.running == 3
    assert value(samples, "vllm:num_requests_waiting") == snap.waiting == 2
    assert value(samples, "vllm:kv_cache_usage_perc") == snap.kv_cache_usage > 0
    assert value(samples, "vllm:gpu_cache_usage_perc") == snap.kv_cache_usage
    assert value(samples, "vllm:prompt_tokens_total") == snap.prompt_tokens
    (lora,) = samples["vllm:lora_requests_info"]
    assert lora.labels == {
        "max_lora": "4",
        "running_lora_adapters": "sql-lora",
        "waiting_lora_adapters": "chat-lora",
    }
    assert lora.value > 1.7e9, "the value is a Unix timestamp"
    (config,) = samples["vllm:cache_config_info"]
    assert config.labels == {"block_size": "16", "num_gpu_blocks": "40", "engine": "0"}
    assert config.value == 1.0


async def test_the_real_engine_under_load_matches_its_metrics(
    session: aiohttp.ClientSession,
) -> None:
    # Slowed down 100x: one engine step lasts long enough that nothing moves during a scrape.
    config = EngineConfig.from_preset(
        "tiny", model_name="fake-model", max_num_seqs=3, time_scale=0.01, max_model_len=1024
    )
    engine = Engine(config)
    await engine.start()
    try:
        async with serve_pod(engine) as pod:

            async def request(prompt: str) -> None:
                body = {"model": "fake-model", "prompt": prompt, "max_tokens": 200, "stream": True}
                async with session.post(f"{pod.url}/v1/completions", json=body) as response:
                    async for _ in response.content:
                        pass

            tasks = [asyncio.create_task(request(str(i) * 400)) for i in range(5)]
            snap = engine.snapshot()
            async with asyncio.timeout(10):
                while not (snap.running == 3 and snap.waiting == 2 and snap.generation_tokens):
                    await asyncio.sleep(0.01)
                    snap = engine.snapshot()
            async with session.get(f"{pod.url}/metrics") as response:
                samples = scrape(await response.text())
            after = engine.snapshot()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await engine.stop()
    assert after.generation_tokens == snap.generation_tokens, "the engine moved during the scrape"
    assert value(samples, "vllm:num_requests_running") == snap.running == 3
    assert value(samples, "vllm:num_requests_waiting") == snap.waiting == 2
    assert value(samples, "vllm:kv_cache_usage_perc") == snap.kv_cache_usage > 0
    assert value(samples, "vllm:generation_tokens_total") == snap.generation_tokens
    assert value(samples, "vllm:prompt_tokens_total") == snap.prompt_tokens


def timings(arrival: float, scheduled: float, first: float, finished: float) -> RequestTimings:
    return RequestTimings(
        arrival=arrival, scheduled=scheduled, first_token=first, finished=finished
    )


@pytest.mark.parametrize(
    ("name", "le", "count", "total"),
    [
        # arrival 10.0, scheduled 10.5, first token 10.7, then tokens at 10.72 and 10.80.
        pytest.param("vllm:request_queue_time_seconds", "0.5", 1, 0.5, id="queue"),
        pytest.param("vllm:time_to_first_token_seconds", "0.75", 1, 0.7, id="ttft"),
        pytest.param("vllm:e2e_request_latency_seconds", "1.0", 1, 0.8, id="e2e"),
        pytest.param("vllm:request_prefill_time_seconds", "0.3", 1, 0.2, id="prefill"),
        pytest.param("vllm:request_decode_time_seconds", "0.3", 1, 0.1, id="decode"),
        pytest.param("vllm:request_inference_time_seconds", "0.5", 1, 0.3, id="inference"),
        # One observation per gap between tokens (0.02 s and 0.08 s), as vLLM observes them.
        pytest.param("vllm:inter_token_latency_seconds", "0.1", 2, 0.1, id="itl"),
        pytest.param("vllm:time_per_output_token_seconds", "0.1", 2, 0.1, id="tpot"),
    ],
)
def test_a_finished_request_is_observed_in_each_histogram(
    name: str, le: str, count: int, total: float
) -> None:
    """All of a histogram's observations fall in its bucket `le`, with vLLM's boundaries."""
    metrics = PodMetrics(FakeEngine().snapshot, model_name="m")
    metrics.record(timings(10.0, 10.5, 10.7, 10.8), [10.7, 10.72, 10.8], "length")
    samples = scrape(metrics.render().decode())
    assert value(samples, f"{name}_count") == count
    assert value(samples, f"{name}_bucket", le=le) == count
    assert value(samples, f"{name}_sum") == pytest.approx(total)


def test_request_outcomes_are_counted_by_finish_reason() -> None:
    metrics = PodMetrics(FakeEngine().snapshot, model_name="m")
    done = timings(0.0, 0.0, 0.1, 0.2)
    metrics.record(done, [0.1, 0.2], "length")
    metrics.record(done, [0.1], "stop")
    metrics.record(RequestTimings(0.0, None, None, None), [], "abort")
    samples = scrape(metrics.render().decode())
    counts: dict[str, Any] = {
        s.labels["finished_reason"]: s.value for s in samples["vllm:request_success_total"]
    }
    assert counts == {"stop": 1.0, "length": 1.0, "abort": 1.0}
    assert value(samples, "vllm:e2e_request_latency_seconds_count") == 2, "aborts are not timed"
