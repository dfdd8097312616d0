"""Test support for the EPP: model-server metrics pages and fake metrics endpoints here; the
modules beside it hold the rest (`builders`, `requestpath` fakes, `model_servers` and
`generating_server`, and `gateway`: a real Envoy in front of the EPP to test through). The
gateway modules are not re-exported: importing this package stays light for unit tests and
benchmarks that only need metrics pages."""

from igw.epp.testing.metrics_pages import (
    LoraInfo,
    VllmState,
    sglang_page,
    triton_page,
    trtllm_page,
    vllm_page,
)
from igw.epp.testing.metrics_server import Behaviour, MetricsServers

__all__ = [
    "Behaviour",
    "LoraInfo",
    "MetricsServers",
    "VllmState",
    "sglang_page",
    "triton_page",
    "trtllm_page",
    "vllm_page",
]
