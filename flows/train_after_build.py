"""The `train-after-build` flow: a dataset version in, a tokenizer, token files and a trained model out.

It is what a deployment triggers when a build completes; `make demo` runs it right after the
build. Each step is a package function; this flow only orders them and records what it made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from model.config import TrainConfig, load_train_config
from model.sample import sample_run
from model.train import TrainResult, train
from tokenizer.build import TokenizeResult
from tokenizer.cli import tokenize_dataset
from warehouse.layout import DatasetPaths, run_dir


@dataclass
class TrainAfterBuild:
    tokens: TokenizeResult
    run: TrainResult
    sample: str


@task(name="tokenize", cache_policy=NO_CACHE)
def tokenize_step(dataset: str, vocab_size: int | None, version: int | None) -> TokenizeResult:
    return tokenize_dataset(dataset, vocab_size=vocab_size, version=version)


@task(name="train", cache_policy=NO_CACHE)
def train_step(tokens_dir: Path, out: Path, cfg: TrainConfig, max_seconds: float | None) -> TrainResult:
    return train(tokens_dir, out, cfg, max_seconds=max_seconds)


@flow(name="train-after-build")
def train_after_build(
    dataset: str,
    vocab_size: int | None = None,  # None: sized to the dataset (tokenizer/defaults.py)
    preset: str | None = None,
    config: str | None = None,
    overrides: dict | None = None,
    max_seconds: float | None = None,
    version: int | None = None,
    prompt: str = "The ",
) -> TrainAfterBuild:
    """Tokenize `dataset` (DIR/NAME) at `version` (default: current), train a model, sample from it.

    The training config is `config` (a TOML/YAML file) or the defaults, then `preset` and `overrides`
    (TrainConfig fields) on top.
    """
    ds = DatasetPaths.parse(dataset)
    tokens = tokenize_step(dataset, vocab_size, version)
    cfg = load_train_config(config, **({"preset": preset} | (overrides or {})))
    out = Path(run_dir(ds.root, f"{ds.name}-{tokens.tokenizer_id}-{time.strftime('%Y%m%dT%H%M%S')}"))
    result = train_step(tokens.out, out, cfg, max_seconds)
    return TrainAfterBuild(tokens, result, sample_run(result.run_dir, prompt=prompt, max_new_tokens=120))
