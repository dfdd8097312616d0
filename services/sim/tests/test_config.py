"""igw.sim.config: one option table for flags and YAML, precedence, fleets, ports, names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from igw.sim.config import (
    OPTIONS,
    ConfigError,
    LoraModule,
    PodConfig,
    SimConfig,
    build,
    read_yaml,
)

NO_ENV: dict[str, str] = {}


def flags(**values: Any) -> dict[str, Any]:
    """Flags as the CLI hands them over: option name -> parsed value, only those given."""
    by_name = {alias: o for o in OPTIONS for alias in (o.name, *o.aliases)}
    parsed = {}
    for key, value in values.items():
        option = by_name[key.replace("_", "-")]
        parsed[option.name] = option.parse(value)
    return parsed


def test_defaults() -> None:
    assert build({}, None, NO_ENV) == SimConfig(pods=(PodConfig(port=8000),))


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        pytest.param("max-num-seqs", "8", "max_num_seqs", 8, id="int-from-text"),
        pytest.param("max_num_seqs", 8, "max_num_seqs", 8, id="underscore-key"),
        pytest.param("kv-cache-size", 64, "num_gpu_blocks", 64, id="llm-d-alias"),
        pytest.param("startup-duration", "1500ms", "startup_delay", 1.5, id="go-duration"),
        pytest.param("startup-delay", 2, "startup_delay", 2.0, id="seconds"),
        pytest.param("failure-rate", 12.5, "failure_injection_rate", 12.5, id="issue-alias"),
        pytest.param(
            "failure-types",
            "rate_limit, server_error",
            "failure_types",
            ("rate_limit", "server_error"),
            id="comma-separated",
        ),
        pytest.param(
            "failure-types", ["rate_limit"], "failure_types", ("rate_limit",), id="yaml-list"
        ),
        pytest.param(
            "lora-modules",
            ["sql=/a/sql", '{"name": "chat", "path": "/a/chat", "base_model_name": "m"}'],
            "lora_modules",
            (LoraModule("sql", "/a/sql"), LoraModule("chat", "/a/chat")),
            id="vllm-and-json-lora-modules",
        ),
        pytest.param(
            "lora-modules",
            [{"name": "sql", "path": "/a/sql"}],
            "lora_modules",
            (LoraModule("sql", "/a/sql"),),
            id="yaml-mapping-lora-module",
        ),
    ],
)
def test_yaml_values(key: str, value: object, field: str, expected: object) -> None:
    (pod,) = build({}, {key: value}, NO_ENV).pods
    assert getattr(pod, field) == expected


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param({"max-num-seq": 3}, "unknown option 'max-num-seq'", id="typo"),
        pytest.param({"max-num-seqs": 0}, "expected 1 or more", id="zero-seqs"),
        pytest.param({"max-num-seqs": "many"}, "max-num-seqs", id="not-a-number"),
        pytest.param({"failure-injection-rate": 101}, "failure-injection-rate", id="over-100"),
        pytest.param({"failure-types": ["oops"]}, "unknown failure types", id="failure-type"),
        pytest.param({"lora-modules": ["nopath"]}, "name=path", id="lora-without-path"),
        pytest.param({"startup-delay": "soon"}, "duration", id="bad-duration"),
        pytest.param({"log-format": "xml"}, "json or console", id="log-format"),
        pytest.param({"pods": []}, "pods must be", id="no-pods"),
        pytest.param(
            {"pods": [{"host": "x"}]}, "unknown option 'host'", id="process-option-in-pod"
        ),
        pytest.param({"pods": [{"port": 9000}, {"port": 9000}]}, "already used", id="port-clash"),
        pytest.param({"port": 65535, "data-parallel-size": 2}, "65535", id="past-the-last-port"),
    ],
)
def test_unusable_configuration_is_refused_by_name(
    document: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build({}, document, NO_ENV)


def test_flags_win_over_yaml_and_yaml_over_defaults() -> None:
    document = {"max-num-seqs": 4, "time-scale": 2, "seed": 7}
    (pod,) = build(flags(max_num_seqs="16"), document, NO_ENV).pods
    assert (pod.max_num_seqs, pod.time_scale, pod.seed, pod.block_size) == (16, 2.0, 7, None)


@pytest.mark.parametrize(
    ("env", "document", "given", "expected"),
    [
        pytest.param({"POD_NAME": "env-pod"}, {}, {}, "env-pod", id="env"),
        pytest.param({"POD_NAME": "env-pod"}, {"pod-name": "yaml"}, {}, "env-pod", id="env>yaml"),
        pytest.param({"POD_NAME": "env-pod"}, {}, {"pod_name": "flag"}, "flag", id="flag>env"),
        pytest.param({}, {"pod-name": "yaml"}, {}, "yaml", id="yaml"),
        pytest.param({}, {}, {}, None, id="none"),
    ],
)
def test_pod_name_precedence(
    env: dict[str, str], document: dict[str, object], given: dict[str, Any], expected: str | None
) -> None:
    (pod,) = build(flags(**given), document, env).pods
    assert pod.pod_name == expected


def test_identical_pods_take_consecutive_ports_after_their_ranks() -> None:
    config = build(flags(port="9000", pods="3", data_parallel_size="2", pod_name="p"), None, NO_ENV)
    assert [(pod.port, pod.pod_name) for pod in config.pods] == [
        (9000, "p-0"),
        (9002, "p-1"),
        (9004, "p-2"),
    ]


def test_a_pod_list_sets_options_per_pod_and_flags_override_all_but_identity() -> None:
    document = {
        "port": 7000,
        "time-scale": 3,
        "max-num-seqs": 4,
        "pods": [
            {"model": "a", "pod-name": "first", "max-num-seqs": 8},
            {"model": "b", "port": 7100, "data-parallel-size": 2, "time-scale": 5},
            {"model": "c"},
        ],
    }
    pods = build(flags(time_scale="10", port="6000"), document, NO_ENV).pods
    assert [(p.model, p.port, p.pod_name) for p in pods] == [
        ("a", 6000, "first"),
        ("b", 7100, None),
        ("c", 7102, None),
    ]
    assert [p.max_num_seqs for p in pods] == [8, 4, 4], "an entry wins over the top level"
    assert [p.time_scale for p in pods] == [10.0, 10.0, 10.0], "a flag wins over every entry"


def test_port_zero_lets_every_pod_bind_any_port() -> None:
    config = build(flags(port="0", pods="2", data_parallel_size="2"), None, NO_ENV)
    assert [pod.port for pod in config.pods] == [0, 0]


def test_engine_overrides_use_the_engine_config_names() -> None:
    (pod,) = build(
        flags(model="m", max_loras="2", lora_load_latency="0.5", kv_cache_size="99"),
        None,
        NO_ENV,
    ).pods
    assert pod.engine_overrides() == {
        "model_name": "m",
        "max_loras": 2,
        "lora_load_latency_s": 0.5,
        "num_gpu_blocks": 99,
    }


def test_read_yaml(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text("port: 9000\nmax_num_seqs: 3\n", encoding="utf-8")
    assert read_yaml(path) == {"port": 9000, "max_num_seqs": 3}
    path.write_text("- not a mapping\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_yaml(path)
    path.write_text("", encoding="utf-8")
    assert read_yaml(path) == {}
