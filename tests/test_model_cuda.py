"""On a real GPU (skipped with the reason elsewhere): a short run trains on CUDA in bf16, resumes
there exactly where it stopped, and samples from the GPU."""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch

from model.checkpoint import load_checkpoint
from model.config import load_train_config
from model.sample import sample_run
from model.train import train
from tokenizer.cli import tokenize_text

pytestmark = [pytest.mark.cuda, pytest.mark.shared]


def test_a_short_gpu_run_trains_resumes_and_samples(shared_data, tmp_path):
    tokens = tmp_path / "tok"
    tokenize_text([shared_data / "prose" / "tinyshakespeare.txt"], tokens, vocab_size=512, workers=1, progress=False)
    cfg = load_train_config(None, preset="tiny", batch_size=16, lr=3e-3, warmup_steps=5, log_interval=1,
                            eval_interval=10, sample_tokens=8, device="cuda")
    budget = 30 * 16 * 64
    run = tmp_path / "run"
    first = train(tokens, run, cfg, max_tokens=budget, stop_at_step=15)
    assert first.steps == 15
    lineage = json.loads((run / "lineage.json").read_text())
    assert lineage["device"] == torch.cuda.get_device_name(0)
    second = train(tokens, run, resume=True, max_tokens=budget)
    assert second.steps == 30 and second.stopped_by == "max_tokens"
    losses = pl.read_parquet(run / "metrics.parquet")["train_loss"].drop_nulls().to_list()
    assert len(losses) == 30 and sum(losses[-5:]) / 5 < losses[0] - 0.5
    assert load_checkpoint(run)["schedule"]["step"] == 30
    text = sample_run(run, prompt="ROMEO:", max_new_tokens=20, device="cuda")
    assert text.startswith("ROMEO:") and len(text) > len("ROMEO:")
