"""examples/flow-control: the files load as the EPP and the simulator read them, and the local
gateway runs with them, the objectives' priorities reaching the EPP."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from igw.e2e import pool
from igw.e2e.gateway import GatewayPorts, LocalGateway
from igw.epp.config import load_config_file
from igw.epp.scheduling.plugins import ConcurrencyDetector

EXAMPLE = Path(__file__).parents[2] / "examples" / "flow-control"
OBJECTIVES = {"critical": 10, "batch": 0}
"""As docs/guides/priorities-and-fairness.md runs it (lean response mode)."""


def test_the_epp_config_turns_flow_control_on_with_a_band_per_objective() -> None:
    config = load_config_file(EXAMPLE / "epp.yaml")
    flow = config.flow_control
    assert flow.enabled
    assert flow.default_request_ttl > 0
    assert flow.max_requests > 0
    assert sorted(band.priority or 0 for band in flow.bands) == sorted(OBJECTIVES.values())
    for band in (*flow.bands, flow.default_band):
        assert band.fairness_policy == "round-robin-fairness-policy"
        assert 0 < band.max_requests <= flow.max_requests
    detector = config.saturation_detector
    assert isinstance(detector, ConcurrencyDetector)
    # The detector's limit is what one simulator rank runs at once and one more, ready to
    # start: the EPP queues once every rank is busy and has its next request.
    sim_options = pool.read_sim_options(EXAMPLE / "sim.yaml")
    assert detector.capacity == int(str(sim_options["max-num-seqs"])) + 1


@pytest.mark.envoy
async def test_the_local_gateway_runs_the_example(tmp_path: Path) -> None:
    gateway = LocalGateway(
        GatewayPorts.free(),
        tmp_path,
        epp_config=EXAMPLE / "epp.yaml",
        objectives=OBJECTIVES,
        sim_options=pool.read_sim_options(EXAMPLE / "sim.yaml"),
    )
    await gateway.start()
    try:
        body = {"model": pool.BASE_MODEL, "messages": [{"role": "user", "content": "hi"}]}
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for objective in OBJECTIVES:
                headers = {"x-gateway-inference-objective": objective}
                url = f"{gateway.url}/v1/chat/completions"
                async with session.post(url, json=body, headers=headers) as response:
                    answer = await response.json()
                    assert response.status == 200, answer
                # The simulator runs with sim.yaml's default-max-tokens.
                assert answer["usage"]["completion_tokens"] == 128
            metrics_url = f"http://127.0.0.1:{gateway.ports.epp_metrics}/metrics"
            async with session.get(metrics_url) as response:
                metrics = await response.text()
    finally:
        await gateway.stop()
    scheduled = [
        line
        for line in metrics.splitlines()
        if line.startswith("inference_objective_request_total")
    ]
    assert any('priority="10"' in line for line in scheduled), scheduled
    assert any('priority="0"' in line for line in scheduled), scheduled
