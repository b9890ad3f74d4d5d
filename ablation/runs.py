"""One proxy model: train it on a variant at a fixed token budget, then score it in bits per byte.

Every run of an ablation has the same shape, tokens per step and number of training tokens, so
variants differ in their data only. Training goes through `model.train.train` (the project's one
trainer); on CPU with a fixed thread count it is deterministic, so a seed gives the same numbers
on every run.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import torch
from rich.console import Console

from model.config import TrainConfig
from model.data import eval_windows, window_batches
from model.metrics import METRICS_NAME
from model.sample import load_run
from model.train import train
from tokenizer.tokenfile import TokenFile


@dataclass(frozen=True)
class RunScore:
    steps: int
    tokens: int
    bpb: dict[str, float]  # scored on -> bits per byte
    curve: pl.DataFrame  # tokens, val_bpb: the trainer's validation curve (on the eval text)


@torch.no_grad()
def bits_per_byte(model, tokens: TokenFile, n_bytes: int, max_tokens: int, batch_size: int = 16) -> float:
    """Mean loss over evenly spread non-overlapping windows (at most max_tokens), in bits per byte
    of the whole file's text (its tokens per byte), as the trainer computes val_bpb."""
    T = model.cfg.block_size
    starts = eval_windows(tokens.n_tokens, T, max_tokens)
    total, count = 0.0, 0
    for x, y in window_batches(tokens.tokens, starts, T, batch_size):
        _, loss = model(x, y)
        total += loss.item() * y.numel()
        count += y.numel()
    return total / count * tokens.n_tokens / (math.log(2) * n_bytes)


def train_and_score(tokens_dir: Path, run_dir: Path, cfg: TrainConfig, max_tokens: int,
                    score_on: dict[str, tuple[Path, int]], score_tokens: int) -> RunScore:
    """Train into run_dir (replacing an earlier run there) and score the final model on each
    (token file, its text's bytes) of `score_on`."""
    shutil.rmtree(run_dir, ignore_errors=True)
    result = train(tokens_dir, run_dir, cfg, max_tokens=max_tokens, console=Console(quiet=True))
    threads = torch.get_num_threads()
    try:
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        model, _ = load_run(run_dir, cfg.device)
        scores = {name: bits_per_byte(model, TokenFile.open(path), n_bytes, score_tokens)
                  for name, (path, n_bytes) in score_on.items()}
    finally:
        torch.set_num_threads(threads)
    curve = pl.read_parquet(run_dir / METRICS_NAME).drop_nulls("val_bpb").select("tokens", "val_bpb")
    return RunScore(result.steps, result.tokens, scores, curve)


def measure_tokens_per_second(tokens_dir: Path, run_dir: Path, cfg: TrainConfig, seconds: float) -> float:
    """Training throughput of this shape on this machine, from a short run of `seconds`."""
    shutil.rmtree(run_dir, ignore_errors=True)
    result = train(tokens_dir, run_dir, cfg.model_copy(update={"eval_interval": 10**9}),
                   max_seconds=seconds, console=Console(quiet=True))
    shutil.rmtree(run_dir, ignore_errors=True)
    return float(result.tokens_per_s)
