"""Checkpoints: everything a run needs to continue exactly where it stopped, in one file.

RUN/checkpoint.pt holds a dict of tensors and plain values only (so it loads with
`torch.load(weights_only=True)`, which cannot run code from a tampered file):

    model, optimizer        state dicts
    schedule                the learning-rate schedule's settings and position (step, tokens, elapsed_s)
    data                    the training sampler's generator state: the data position
    rng                     per rank: torch CPU (and CUDA) generator states, for dropout
    config, gpt_config      the TrainConfig and model shape as plain dicts
    vocab_size              the tokenizer's real vocabulary (the model's may be padded)

It is written to a temporary file and renamed over the old one, so a crash mid-write leaves the
previous checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch

from warehouse.errors import MissingFileError, TokenmillError

CHECKPOINT_NAME = "checkpoint.pt"


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_NAME


def save_checkpoint(run_dir: str | Path, state: dict) -> Path:
    """Write state atomically to RUN/checkpoint.pt; returns its path."""
    path = checkpoint_path(run_dir)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


class CheckpointError(TokenmillError, ValueError):
    """A checkpoint file that cannot be read: empty, cut short, or not a tokenmill checkpoint."""


def load_checkpoint(run_dir: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read RUN/checkpoint.pt with weights_only=True. MissingFileError names the path when absent,
    CheckpointError when the file is empty, truncated or corrupt."""
    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise MissingFileError(f"no checkpoint at {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint (a copy or disk that failed?)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        reason = str(exc).strip().split(". ")[0].splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint, truncated or corrupt ({reason[:160]})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a tokenmill checkpoint (no model state)")
    return state


def capture_rng() -> dict:
    """This process's global generator states (CPU, and every CUDA device when present)."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
