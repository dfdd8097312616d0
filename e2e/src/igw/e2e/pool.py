"""The simulated inference pool behind the local gateway, and the files that describe it.

Three `igw-sim` pods serve base model `meta-llama/Llama-3.1-8B-Instruct` from one process:

    sim-0   127.0.0.1:<first>                 one rank
    sim-1   127.0.0.1:<first+1>, <first+2>    two data-parallel ranks (sim-1-rank-0, -rank-1)
    sim-2   127.0.0.2:<first+3>               also serves LoRA adapter food-review-1 (max-loras 1)

The same pool is written three times, each in the format its reader expects: the simulator's
`--config` (a `pods:` list), the EPP's `--endpoints-file`, and the BBR's `--adapters-file`.

Why sim-2 sits on 127.0.0.2: only sim-2 serves the adapter, and the EPP cannot tell that from
model-server metrics (vLLM reports running adapters, not loaded ones). So the gateway narrows an
adapter request's candidates with the data plane's subset hint (upstream §1.5), which matches
endpoints by IP; a pod of its own IP is also what a Kubernetes pod has. The simulator binds
0.0.0.0 so that one process answers on both loopback addresses.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ADAPTER",
    "ADAPTER_POD_IP",
    "BASE_MODEL",
    "POD_IP",
    "SIM_PORTS",
    "adapter_subset_lua",
    "adapters_yaml",
    "endpoints_yaml",
    "sim_yaml",
]

BASE_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
ADAPTER = "food-review-1"
POD_IP = "127.0.0.1"
ADAPTER_POD_IP = "127.0.0.2"
SIM_PORTS = 4
"""Consecutive ports the pool takes from its first: sim-0, sim-1's two ranks, sim-2."""
TIME_SCALE = 10
"""Simulated seconds per wall second: realistic H100 timings, answers ten times sooner."""


@dataclass(frozen=True, slots=True)
class _Pod:
    name: str
    ip: str
    offset: int
    ranks: int = 1
    adapter: bool = False


_PODS = (
    _Pod("sim-0", POD_IP, 0),
    _Pod("sim-1", POD_IP, 1, ranks=2),
    _Pod("sim-2", ADAPTER_POD_IP, 3, adapter=True),
)


def sim_yaml(first_port: int) -> str:
    """`igw-sim --config`: the three pods on the llama-3.1-8b-h100 preset."""
    lines = [
        "# igw-sim --config: the local gateway's pool (see igw.e2e.pool).",
        "host: 0.0.0.0",
        "preset: llama-3.1-8b-h100",
        f"model: {BASE_MODEL}",
        f"time-scale: {TIME_SCALE}",
        "log-format: console",
        "pods:",
    ]
    for pod in _PODS:
        entry = f"  - {{pod-name: {pod.name}, port: {first_port + pod.offset}"
        if pod.ranks > 1:
            entry += f", data-parallel-size: {pod.ranks}"
        if pod.adapter:
            entry += f", lora-modules: [{ADAPTER}=/adapters/{ADAPTER}], max-loras: 1"
        lines.append(entry + "}")
    return "\n".join(lines) + "\n"


def endpoints_yaml(first_port: int) -> str:
    """`igw-epp --endpoints-file`: each pod, its IP and its ranks' ports."""
    lines = ["# igw-epp --endpoints-file: the local gateway's pool (see igw.e2e.pool)."]
    lines.append("endpoints:")
    for pod in _PODS:
        port = first_port + pod.offset
        ports = ", ".join(str(port + rank) for rank in range(pod.ranks))
        lines.append(f"  - {{name: {pod.name}, address: {pod.ip}, ports: [{ports}]}}")
    return "\n".join(lines) + "\n"


def adapters_yaml() -> str:
    """`igw-bbr --adapters-file`: the adapter runs on the base model."""
    return (
        "# LoRA adapters and the base model they run on (same data as a bbr-managed ConfigMap).\n"
        "baseModels:\n"
        f"  - baseModel: {BASE_MODEL}\n"
        f"    adapters: [{ADAPTER}]\n"
    )


def adapter_subset_lua(model_header: str) -> str:
    """Envoy Lua: requests for the adapter get the subset hint naming the pods that serve it."""
    return f"""
function envoy_on_request(handle)
  if handle:headers():get("{model_header}") == "{ADAPTER}" then
    handle:streamInfo():dynamicMetadata():set(
      "envoy.lb.subset_hint", "x-gateway-destination-endpoint-subset", {{"{ADAPTER_POD_IP}"}})
  end
end
"""
