"""`EppService` wiring: static discovery feeds the datastore, health follows it, config errors."""

from pathlib import Path

import pytest

from igw.epp.config import ConfigError
from igw.epp.server import EppOptions, EppService

ENDPOINTS = """\
endpoints:
  - {name: sim-0, address: 127.0.0.1, port: 1, ranks: 2}
"""


def options(tmp_path: Path, **overrides: object) -> EppOptions:
    path = tmp_path / "endpoints.yaml"
    path.write_text(ENDPOINTS)
    base: dict[str, object] = {
        "grpc_port": 0, "grpc_health_port": 0, "metrics_port": 0, "host": "127.0.0.1",
        "secure_serving": False, "tracing": False, "endpoints_file": path, "grace_s": 0.1,
        "metrics_endpoint_auth": False,
    }  # fmt: skip
    return EppOptions(**{**base, **overrides})  # type: ignore[arg-type]  # keyword pass-through


async def test_serving_once_endpoints_are_loaded(tmp_path: Path) -> None:
    service = EppService(options(tmp_path))
    assert not service.health.serving()
    await service.start()
    try:
        assert service.health.serving()
        assert service.datastore is not None
        names = [s.endpoint.name for s in service.datastore.endpoints()]
        assert names == ["sim-0-rank-0", "sim-0-rank-1"]
        info = service.registry.get_sample_value(
            "inference_extension_info", {"commit": "unknown", "build_ref": "0.1.0"}
        )
        assert info == 1
    finally:
        await service.stop()
    assert not service.health.serving()


def test_bad_config_names_the_field(tmp_path: Path) -> None:
    text = (
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nbogus: 1\n"
    )
    with pytest.raises(ConfigError, match="bogus"):
        EppService(options(tmp_path, config_text=text))


async def test_the_flow_control_gate_makes_flow_control_the_admission(tmp_path: Path) -> None:
    config = (
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n"
        "featureGates: [flowControl]\n"
    )
    service = EppService(options(tmp_path, config_text=config))
    controller = service.flow_control
    assert controller is not None
    assert service.config.request_control.admission is controller
    assert service.datastore is not None
    assert service.datastore.on_change == controller.wake
    await service.start()
    try:
        running_while_serving = controller.running
    finally:
        await service.stop()
    assert (running_while_serving, controller.running) == (True, False)
    assert EppService(options(tmp_path)).flow_control is None  # gate off: legacy admission
