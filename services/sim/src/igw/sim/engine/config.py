"""`EngineConfig`: every knob of one simulated engine, validated on construction.

Build one from a preset (`EngineConfig.from_preset("llama-3.1-8b-h100", max_num_seqs=64)`);
overrides may name an `EngineConfig` field or a `TimingProfile` field. Errors are `ValueError`s
that name the offending option, so the CLI can print them as they are.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from igw.sim.engine.presets import DEFAULT_PRESET, PRESETS
from igw.sim.engine.timing import TimingProfile

__all__ = ["EngineConfig"]

_TIMING_FIELDS = frozenset(field.name for field in dataclasses.fields(TimingProfile))


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """One engine's (one simulated pod's, or one data-parallel rank's) configuration."""

    model_name: str
    timing: TimingProfile
    num_gpu_blocks: int
    max_num_seqs: int
    max_num_batched_tokens: int
    """Token budget of one step (chunked prefill): decode tokens first, then prefill chunks."""
    max_model_len: int
    block_size: int = 16
    max_waiting_queue_length: int = 1000
    """Waiting requests beyond those a free seq slot will take at the next step (llm-d's flag)."""
    max_loras: int = 1
    lora_load_latency_s: float = 0.15
    """Loading a non-resident adapter. An assumption, not a measurement: a rank-16 adapter on
    every projection of an 8B model is ~84 MB; moving it over PCIe takes a few ms, reading and
    preparing it on the host dominates. Set it to what your deployment measures."""
    time_scale: float = 1.0
    """Simulated seconds per wall-clock second."""
    seed: int = 0
    """For the server's generated text; the engine model itself is deterministic."""

    def __post_init__(self) -> None:
        if not isinstance(self.model_name, str) or not self.model_name:
            raise ValueError("model_name must be a non-empty string")
        if not isinstance(self.timing, TimingProfile):
            raise ValueError("timing must be a TimingProfile")  # noqa: TRY004 - see _check_int
        _check_int("num_gpu_blocks", self.num_gpu_blocks, 1)
        _check_int("block_size", self.block_size, 1)
        _check_int("max_num_seqs", self.max_num_seqs, 1)
        _check_int("max_num_batched_tokens", self.max_num_batched_tokens, self.max_num_seqs)
        _check_int("max_model_len", self.max_model_len, 1)
        _check_int("max_waiting_queue_length", self.max_waiting_queue_length, 0)
        _check_int("max_loras", self.max_loras, 1)
        _check_int("seed", self.seed, 0)
        _check_float("lora_load_latency_s", self.lora_load_latency_s, 0.0, inclusive=True)
        _check_float("time_scale", self.time_scale, 0.0, inclusive=False)
        capacity = self.num_gpu_blocks * self.block_size
        if self.max_model_len > capacity:
            raise ValueError(
                f"max_model_len {self.max_model_len} does not fit in the KV cache "
                f"({self.num_gpu_blocks} blocks x {self.block_size} tokens = {capacity}): "
                f"raise num_gpu_blocks or lower max_model_len"
            )

    @classmethod
    def from_preset(cls, name: str = DEFAULT_PRESET, **overrides: object) -> EngineConfig:
        """The preset's configuration with `overrides` applied (engine or timing field names).

        Overrides that are None are ignored, so unset command-line flags can be passed as is."""
        overrides = {key: value for key, value in overrides.items() if value is not None}
        preset = PRESETS.get(name)
        if preset is None:
            raise ValueError(f"unknown preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
        timing_overrides: dict[str, Any] = {
            k: v for k, v in overrides.items() if k in _TIMING_FIELDS
        }
        unknown = set(overrides) - _TIMING_FIELDS - _ENGINE_FIELDS
        if unknown:
            raise ValueError(
                f"unknown engine option(s) {', '.join(sorted(unknown))}; options: "
                f"{', '.join(sorted(_ENGINE_FIELDS | _TIMING_FIELDS))}"
            )
        options: dict[str, Any] = {
            "model_name": preset.model_name,
            "num_gpu_blocks": preset.num_gpu_blocks,
            "block_size": preset.block_size,
            "max_num_seqs": preset.max_num_seqs,
            "max_num_batched_tokens": preset.max_num_batched_tokens,
            "max_model_len": preset.max_model_len,
        }
        options.update((k, v) for k, v in overrides.items() if k in _ENGINE_FIELDS)
        timing = options.get("timing", preset.timing)
        if isinstance(timing, TimingProfile):
            options["timing"] = dataclasses.replace(timing, **timing_overrides)
        if "max_model_len" not in overrides:
            # The preset's context length is a default, not a demand: a smaller KV cache given
            # by the caller shortens it rather than failing.
            blocks, block_size = options["num_gpu_blocks"], options["block_size"]
            if isinstance(blocks, int) and isinstance(block_size, int):
                options["max_model_len"] = min(preset.max_model_len, blocks * block_size)
        return cls(**options)


_ENGINE_FIELDS = frozenset(field.name for field in dataclasses.fields(EngineConfig))


def _check_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        # A ValueError, like every other configuration error, so the CLI reports them one way.
        raise ValueError(f"{name} must be an integer, got {value!r}")  # noqa: TRY004
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def _check_float(name: str, value: object, minimum: float, *, inclusive: bool) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (value == minimum and not inclusive):
        relation = ">=" if inclusive else ">"
        raise ValueError(f"{name} must be {relation} {minimum}, got {value}")
