"""The simulated inference pool behind the local gateway, and the files that describe it.

Three `igw-sim` pods serve base model `meta-llama/Llama-3.1-8B-Instruct` from one process:

    sim-0   127.0.0.1:<first>                 one rank
    sim-1   127.0.0.1:<first+1>, <first+2>    two data-parallel ranks (sim-1-rank-0, -rank-1)
    sim-2   127.0.0.2:<first+3>               also serves LoRA adapter food-review-1 (max-loras 1)

The same pool is written three times, each in the format its reader expects: the simulator's
`--config` (a `pods:` list), the EPP's `--endpoints-file`, and the BBR's `--adapters-file`.

`--sim-config` (`igw-local run`) tunes the simulator without changing that layout: its keys are
`igw-sim --config` options applied to every pod (`max-num-seqs: 2` shrinks the pool's capacity),
checked by the simulator's own parser; the keys that make the layout (pods, ports, models,
adapters) are refused, since the EPP's and the BBR's files describe the same pods.

Why sim-2 sits on 127.0.0.2: only sim-2 serves the adapter, and the EPP cannot tell that from
model-server metrics (vLLM reports running adapters, not loaded ones). So the gateway narrows an
adapter request's candidates with the data plane's subset hint (upstream §1.5), which matches
endpoints by IP; a pod of its own IP is also what a Kubernetes pod has. The simulator binds
0.0.0.0 so that one process answers on both loopback addresses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from igw.sim.config import ConfigError, build, read_yaml
from igw.sim.fleet import plan

__all__ = [
    "ADAPTER",
    "ADAPTER_POD_IP",
    "BASE_MODEL",
    "POD_IP",
    "SIM_PORTS",
    "adapter_subset_lua",
    "adapters_yaml",
    "endpoints_yaml",
    "read_sim_options",
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
LAYOUT_OPTIONS = frozenset(
    {"pods", "port", "host", "pod-name", "model", "served-model-name", "data-parallel-size",
     "lora-modules", "max-loras"}
)  # fmt: skip
"""Simulator options that make the pool's layout, which `--sim-config` may not change."""


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


def sim_yaml(first_port: int, options: Mapping[str, object] | None = None) -> str:
    """`igw-sim --config`: the three pods on the llama-3.1-8b-h100 preset, with `options`
    (from `read_sim_options`) for every pod."""
    top: dict[str, object] = {
        "host": "0.0.0.0",
        "preset": "llama-3.1-8b-h100",
        "model": BASE_MODEL,
        "time-scale": TIME_SCALE,
        "log-format": "console",
    }
    top.update({str(key).replace("_", "-"): value for key, value in (options or {}).items()})
    lines = ["# igw-sim --config: the local gateway's pool (see igw.e2e.pool)."]
    lines += yaml.safe_dump(top, sort_keys=False, width=1000).splitlines()
    lines.append("pods:")
    for pod in _PODS:
        entry = f"  - {{pod-name: {pod.name}, port: {first_port + pod.offset}"
        if pod.ranks > 1:
            entry += f", data-parallel-size: {pod.ranks}"
        if pod.adapter:
            entry += f", lora-modules: [{ADAPTER}=/adapters/{ADAPTER}], max-loras: 1"
        lines.append(entry + "}")
    return "\n".join(lines) + "\n"


def read_sim_options(path: Path) -> dict[str, object]:
    """`--sim-config`'s options, checked as the simulator will read them (module docstring);
    raises ValueError naming the file and what is wrong with it."""
    try:
        options = read_yaml(path)
    except OSError as e:
        raise ValueError(f"{path}: cannot read it: {e.strerror}") from None
    except (yaml.YAMLError, ConfigError) as e:
        raise ValueError(f"{path}: {e}") from None
    layout = sorted(k for k in options if str(k).replace("_", "-") in LAYOUT_OPTIONS)
    if layout:
        raise ValueError(
            f"{path}: {', '.join(map(str, layout))}: the local pool's layout is fixed "
            "(igw.e2e.pool); set engine options such as max-num-seqs or time-scale"
        )
    document = yaml.safe_load(sim_yaml(8000, options))
    try:
        plan(build({}, document, environ={}))
    except ConfigError as e:
        raise ValueError(f"{path}: {e}") from None
    return options


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
