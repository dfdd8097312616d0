"""Test support for the EPP: model-server metrics pages and fake metrics endpoints."""

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
