"""Every setting of a training run, in one validated config.

A user writes a TOML or YAML file with any subset of these fields (`tokenmill train --config
FILE`); everything left out takes the default below. The model's shape is a named preset
(`model/gpt.py`) plus optional overrides under `model`:

    preset = "small"
    lr = 3e-3
    [model]
    n_layer = 6

Unknown keys are errors — in the overrides too — so a typo never silently leaves a default in place.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from model.gpt import PRESETS, GPTConfig
from warehouse.configfile import load_settings
from warehouse.errors import TokenmillError

# Validates field types of a GPTConfig built from file values (a dataclass checks none itself).
_GPT_CONFIG = TypeAdapter(GPTConfig)


class TrainConfigError(TokenmillError, ValueError):
    """A config file or value that cannot be used; the message names the file and the field."""


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Model: a preset and field overrides; vocab_size always comes from the token files.
    preset: str = "small"
    model: dict[str, Any] = {}

    # Batch: tokens per optimizer step = batch_size * block_size * grad_accum * processes.
    batch_size: int = Field(32, gt=0)  # sequences per micro-batch, per process
    grad_accum: int = Field(1, gt=0)  # micro-batches summed before each optimizer step

    # Budget. Both may be given; the run stops at whichever comes first, and the learning-rate
    # schedule runs on the fraction of the budget used, so a time-limited run still decays fully.
    # Neither given: 20 tokens per parameter (Chinchilla's compute-optimal ratio).
    max_tokens: int | None = Field(None, gt=0)
    max_seconds: float | None = Field(None, gt=0)

    # Optimizer: AdamW; decay only on matrices (not norms, not the embedding).
    lr: float = Field(1e-3, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = Field(100, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.95, ge=0, lt=1)
    grad_clip: float | None = Field(1.0, gt=0)  # global gradient-norm clip; None turns it off

    # Evaluation, logging, checkpoints (intervals in optimizer steps).
    eval_interval: int = Field(250, gt=0)
    eval_tokens: int = Field(1_000_000, gt=0)  # validation tokens per evaluation at most (spread evenly)
    log_interval: int = Field(10, gt=0)
    checkpoint_interval: int = Field(1000, gt=0)
    sample_tokens: int = Field(120, ge=0)  # tokens generated into samples.txt at each evaluation
    sample_prompt: str = "\n"

    # Execution.
    seed: int = 1337
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    compile: bool = False
    num_threads: int | None = Field(None, gt=0)  # CPU threads; None leaves torch's default
    peak_flops: float | None = Field(None, gt=0)  # per device, for MFU; None = measured at start

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str) -> str:
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
        return name

    @model_validator(mode="after")
    def _valid_model_overrides(self) -> "TrainConfig":
        known = {f.name for f in fields(GPTConfig)} - {"vocab_size"}
        unknown = set(self.model) - known
        if unknown:
            raise ValueError(f"unknown model field(s) {sorted(unknown)}; known: {sorted(known)}")
        self.gpt_config(vocab_size=64)  # GPTConfig's own checks (head sizes, dropout range)
        return self

    def gpt_config(self, vocab_size: int) -> GPTConfig:
        """The model shape for a vocabulary: the preset, the overrides, and vocab_size rounded up to a
        multiple of 64 (matrix kernels run faster on such shapes; the extra rows are never targets)."""
        fields_ = asdict(PRESETS[self.preset]) | self.model | {"vocab_size": 64 * -(-vocab_size // 64)}
        return _GPT_CONFIG.validate_python(fields_)

    @property
    def block_size(self) -> int:
        return self.gpt_config(vocab_size=64).block_size


def load_train_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Read a TOML or YAML training config (None: the defaults), then apply keyword overrides
    whose value is not None (the CLI's options). Raises TrainConfigError with a one-line message."""
    return load_settings(TrainConfig, path, TrainConfigError, overrides)
