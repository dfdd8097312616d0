"""`SimConfig`: every option of an igw-sim process, from flags, a YAML file and defaults.

One table (`OPTIONS`) names each option once; the CLI's flags and the YAML file's keys are both
made from it, so they cannot drift apart. Names follow llm-d's simulator where the two overlap
(`max-num-seqs`, `max-waiting-queue-length`, `max-model-len`, `max-loras`, `lora-modules`,
`data-parallel-size`, `failure-injection-rate`, `failure-types`, `seed`, `kv-cache-size`,
`block-size`, `startup-duration`), and `failure-rate` (the issue's name) is an alias of
`failure-injection-rate`. YAML keys may also be written with underscores.

Precedence: flags > `POD_NAME` (for `pod-name` only, as llm-d reads its environment) > YAML >
defaults. Engine options left unset take the preset's value (`igw.sim.engine.presets`).

A fleet in one process: `pods: N` (or `--pods N`) serves N identical pods; a YAML list serves one
pod per entry, each entry setting any pod option. Flags override every pod's value, except
`port` and `pod-name`, which are a pod's identity: an entry's own value wins. Ports follow each
other: a pod without its own `port` takes the one after the previous pod's last DP rank, so
`--port 8000 --pods 4 --data-parallel-size 2` serves ranks on 8000-8007. Port 0 lets every rank
bind any free port (tests do this).

    port: 8000
    time-scale: 10
    pods:
      - {model: meta-llama/Llama-3.1-8B-Instruct, lora-modules: [sql-lora=/a/sql]}
      - {preset: llama-3.1-70b-4xh100, data-parallel-size: 2}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from igw.sim._option_values import (
    LoraModule,
    boolean,
    duration,
    failure_types,
    integer,
    lora_modules,
    number,
    text,
)
from igw.sim.engine.presets import DEFAULT_PRESET, PRESETS

__all__ = [
    "OPTIONS",
    "ConfigError",
    "LoraModule",
    "Option",
    "PodConfig",
    "SimConfig",
    "build",
    "read_yaml",
]


class ConfigError(ValueError):
    """An option or a config file igw-sim cannot use; the message names the option."""


@dataclass(frozen=True, slots=True)
class PodConfig:
    """One simulated pod (all its data-parallel ranks); None means "the preset's value"."""

    port: int = 8000
    model: str | None = None
    served_model_name: str | None = None
    pod_name: str | None = None
    preset: str = DEFAULT_PRESET
    max_num_seqs: int | None = None
    max_waiting_queue_length: int | None = None
    max_model_len: int | None = None
    max_num_batched_tokens: int | None = None
    num_gpu_blocks: int | None = None
    block_size: int | None = None
    max_loras: int | None = None
    lora_load_latency: float | None = None
    time_scale: float | None = None
    seed: int | None = None
    lora_modules: tuple[LoraModule, ...] = ()
    data_parallel_size: int = 1
    failure_injection_rate: float = 0.0
    failure_types: tuple[str, ...] = ()
    startup_delay: float = 0.0
    default_max_tokens: int = 256

    def engine_overrides(self) -> dict[str, object]:
        """The options set for `EngineConfig.from_preset`, under its field names."""
        names = {"lora_load_latency": "lora_load_latency_s", "model": "model_name"}
        overrides = {names.get(key, key): getattr(self, key) for key in _ENGINE_KEYS}
        return {key: value for key, value in overrides.items() if value is not None}


_ENGINE_KEYS: Final = (
    "model",
    "max_num_seqs",
    "max_waiting_queue_length",
    "max_model_len",
    "max_num_batched_tokens",
    "num_gpu_blocks",
    "block_size",
    "max_loras",
    "lora_load_latency",
    "time_scale",
    "seed",
)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """A whole igw-sim process: where it listens, its pods, its logging and tracing."""

    pods: tuple[PodConfig, ...] = (PodConfig(),)
    host: str = "0.0.0.0"
    tracing: bool = True
    verbosity: int = 2
    log_format: Literal["json", "console"] = "json"


@dataclass(frozen=True, slots=True)
class Option:
    """One option: a flag `--name` and a YAML key `name` (or `name_with_underscores`)."""

    name: str
    parse: Callable[[object], Any]
    """From flag text or a YAML value to the option's value; raises ValueError."""
    help: str
    scope: Literal["pod", "process"] = "pod"
    aliases: tuple[str, ...] = ()
    many: bool = False
    """Takes several values (`--failure-types a b`)."""

    @property
    def field(self) -> str:
        return self.name.replace("-", "_")


_POSITIVE: Final = integer(1)
OPTIONS: Final[tuple[Option, ...]] = (
    Option("port", integer(0, 65535), "first port; pods and DP ranks take the next ones (8000)"),
    Option("model", text, "model name, also the served name (default: the preset's model)"),
    Option("served-model-name", text, "name clients use in `model` (default: --model)"),
    Option("pod-name", text, "x-inference-pod value (default: $POD_NAME, else <host>-<port>)"),
    Option("preset", text, f"engine profile: {', '.join(PRESETS)} ({DEFAULT_PRESET})"),
    Option("max-num-seqs", _POSITIVE, "requests running at once (continuous batching)"),
    Option("max-waiting-queue-length", integer(0), "waiting requests beyond it answer 429"),
    Option("max-model-len", _POSITIVE, "context length in tokens (prompt + output)"),
    Option("max-num-batched-tokens", _POSITIVE, "tokens per engine step (chunked prefill)"),
    Option("num-gpu-blocks", _POSITIVE, "KV cache size in blocks", aliases=("kv-cache-size",)),
    Option("block-size", _POSITIVE, "tokens per KV block"),
    Option("max-loras", _POSITIVE, "adapters resident at once"),
    Option("lora-load-latency", number(0.0), "seconds to load a non-resident adapter"),
    Option("time-scale", number(1e-9), "simulated seconds per wall second (10: 10x faster)"),
    Option("seed", integer(0), "seed of failure injection (and the engine's)"),
    Option("lora-modules", lora_modules, "adapters to preload: name=path or JSON", many=True),
    Option("data-parallel-size", integer(1, 64), "DP ranks per pod, on consecutive ports"),
    Option(
        "failure-injection-rate",
        number(0.0, 100.0),
        "percent of requests failed on purpose",
        aliases=("failure-rate",),
    ),
    Option("failure-types", failure_types, "failure types to draw from (default all)", many=True),
    Option(
        "startup-delay",
        duration,
        "seconds /health answers 503 after start",
        aliases=("startup-duration",),
    ),
    Option("default-max-tokens", _POSITIVE, "max_tokens of a chat request without one (256)"),
    Option("host", text, "address to bind (0.0.0.0)", scope="process"),
    Option("pods", integer(1, 256), "identical pods in this process", scope="process"),
    Option("tracing", boolean, "OpenTelemetry tracing from OTEL_* (default true)", "process"),
    Option("v", integer(0), "log verbosity: 2 default, 4 debug", scope="process"),
    Option("log-format", text, "json (default) or console", scope="process"),
)
_BY_NAME: Final = {alias: o for o in OPTIONS for alias in (o.name, *o.aliases)}
_IDENTITY: Final = ("port", "pod-name")


def read_yaml(path: Path) -> dict[str, object]:
    """The YAML file's top-level mapping; raises ValueError naming the file when it is not one."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"{path}: expected a mapping of option names, got {type(document).__name__}"
        )
    return document


def _normalize(
    raw: Mapping[str, object], *, where: str, scope: str | None = None
) -> dict[str, Any]:
    """Option name -> parsed value, for YAML keys (any alias or underscore spelling)."""
    parsed: dict[str, Any] = {}
    for key, value in raw.items():
        option = _BY_NAME.get(str(key).replace("_", "-"))
        if option is None or (scope is not None and option.scope != scope):
            raise ConfigError(f"{where}: unknown option {key!r}")
        if option.name == "pods" and isinstance(value, list):
            parsed["pods"] = value  # a list of pod entries, normalized by `build`
            continue
        try:
            parsed[option.name] = option.parse(value)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{where}: {key}: {e}") from None
    return parsed


def build(
    flags: Mapping[str, Any],
    document: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> SimConfig:
    """The configuration from parsed flags (only those given), a YAML document and `environ`."""
    environ = os.environ if environ is None else environ
    top = _normalize(document or {}, where="config")
    if environ.get("POD_NAME"):
        top["pod-name"] = environ["POD_NAME"]
    top.update(flags)
    entries = _pod_entries(top, flags)
    pods = _assign_ports(entries, base=top.get("port", 8000))
    return SimConfig(
        pods=tuple(pods),
        host=top.get("host", "0.0.0.0"),
        tracing=top.get("tracing", True),
        verbosity=top.get("v", 2),
        log_format=_log_format(top.get("log-format", "json")),
    )


def _pod_entries(top: Mapping[str, Any], flags: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each pod's options (option name -> value); `port` None means "after the previous pod"."""
    shared = {k: v for k, v in top.items() if k in _BY_NAME and _BY_NAME[k].scope == "pod"}
    inherited = {k: v for k, v in shared.items() if k not in _IDENTITY}
    pods = top.get("pods", 1)
    if isinstance(pods, int):
        entries = [
            {**inherited, "port": shared.get("port") if i == 0 else None} for i in range(pods)
        ]
    elif isinstance(pods, list) and pods:
        forced = {k: v for k, v in inherited.items() if k in flags}
        entries = [
            {**inherited, "port": None, **_pod_entry(entry, i), **forced}
            for i, entry in enumerate(pods)
        ]
    else:
        raise ConfigError("config: pods must be a count or a non-empty list of pod options")
    name = shared.get("pod-name")
    for i, entry in enumerate(entries):
        if "pod-name" not in entry and name is not None:
            entry["pod-name"] = name if len(entries) == 1 else f"{name}-{i}"
    return entries


def _pod_entry(entry: object, index: int) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"config: pods[{index}] must be a mapping of pod options")
    return _normalize(entry, where=f"config: pods[{index}]", scope="pod")


def _assign_ports(entries: Sequence[dict[str, Any]], *, base: int) -> list[PodConfig]:
    """Pods with their ports: their own, or the one after the previous pod's last rank."""
    pods: list[PodConfig] = []
    next_port, taken = base, set[int]()
    for i, entry in enumerate(entries):
        port = next_port if entry.get("port") is None else entry["port"]
        size = entry.get("data-parallel-size", 1)
        ranks = {port + rank for rank in range(size)} if port else set()
        if ranks & taken:
            raise ConfigError(f"config: pods[{i}] ports {sorted(ranks & taken)} are already used")
        if port and port + size - 1 > 65535:
            raise ConfigError(f"config: pods[{i}] ranks would run past port 65535")
        taken |= ranks
        next_port = port + size if port else 0
        fields = {_BY_NAME[k].field: v for k, v in entry.items() if k != "port"}
        pods.append(PodConfig(port=port, **fields))
    return pods


def _log_format(value: str) -> Literal["json", "console"]:
    if value not in ("json", "console"):
        raise ConfigError(f"log-format must be json or console, got {value!r}")
    return "json" if value == "json" else "console"
