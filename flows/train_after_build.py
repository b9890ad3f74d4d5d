"""The `train-after-build` flow: a dataset version in, a tokenizer, token files and a trained model out.

prefect.yaml's `train-after-build/on-corpus-built` deployment runs it when build-corpus emits
`corpus.built`; `make demo` runs it right after the build. Each step is a package function; this
flow only orders them, records what it made, and emits `model.trained`.

Its defaults fit the bundled sample (about 0.4 MB of kept text): a small vocabulary and model, and
the settings that reached the best bits-per-byte on tinyshakespeare in three CPU-minutes (README).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import events
from flows.artifacts import publish_training
from flows.run_logger import run_logger
from flows.settings import absolute, train_max_seconds
from model.config import TrainConfig, load_train_config
from model.checkpoint import CHECKPOINT_NAME
from model.metrics import METRICS_NAME
from model.sample import sample_run
from model.train import TrainResult, train
from tokenizer.build import TokenizeResult
from tokenizer.cli import tokenize_dataset
from warehouse.layout import DatasetPaths, is_remote, local_mirror, run_dir

VOCAB_SIZE = 1_024
PRESET = "small"
# eval_tokens: the sample's validation split is one Gutenberg book (157 k tokens, 9x the training
# split); an evenly spaced 16 k of it measures bits per byte as well at a tenth of the cost.
OVERRIDES = {"batch_size": 16, "lr": 3e-3, "warmup_steps": 50, "eval_interval": 100, "eval_tokens": 16_384}


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


@task(name="upload-run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[5, 30])
def upload_step(local: Path, url: str) -> None:
    """The finished run's files to the warehouse, checkpoint last: a run folder with a checkpoint is
    complete (an interrupted upload is redone whole by the retry)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    files = sorted((p for p in local.rglob("*") if p.is_file()), key=lambda p: p.name == CHECKPOINT_NAME)
    for path in files:
        fs.put_file(str(path), f"{root}/{path.relative_to(local).as_posix()}")


@flow(name="train-after-build")
def train_after_build(
    dataset: str,
    vocab_size: int | None = VOCAB_SIZE,  # None: sized to the dataset (tokenizer/defaults.py)
    preset: str | None = PRESET,
    config: str | None = None,
    overrides: dict | None = None,
    max_seconds: float | None = None,
    version: int | None = None,
    build_id: str | None = None,
    prompt: str = "The ",
) -> TrainAfterBuild:
    """Tokenize `dataset` (DIR/NAME) at `version` (default: current), train a model, sample from it.

    The training config is `config` (a TOML/YAML file) or the defaults, then `preset` and `overrides`
    (TrainConfig fields; None: the sample's settings above) on top. `max_seconds` None: from
    TOKENMILL_TRAIN_MAX_SECONDS, else two minutes. `build_id` names the build that made `version`.
    """
    log = run_logger()
    ds = DatasetPaths.parse(absolute(dataset))
    max_seconds = max_seconds or train_max_seconds()
    log.info("training on %s version %s (build %s), %.0f s budget", ds.base,
             "current" if version is None else version, build_id or "-", max_seconds)
    tokens = tokenize_step(ds.base, vocab_size, version)
    log.info("token files %s (%s): %s train tokens", tokens.out, tokens.tokenizer_id, f"{tokens.meta['train_tokens']:,}")
    cfg = load_train_config(config, **({"preset": preset} | (OVERRIDES if overrides is None else overrides)))
    out = run_dir(ds.root, f"{ds.name}-{tokens.tokenizer_id}-{time.strftime('%Y%m%dT%H%M%S')}")
    # A run checkpoints as it goes: under an object-store warehouse it trains in a local folder and
    # is uploaded to its place when it ends.
    result = train_step(tokens.out, Path(local_mirror(out)), cfg, max_seconds)
    if is_remote(out):
        upload_step(result.run_dir, out)
    log.info("run %s: %d steps, %s tokens, val bits/byte %s", out, result.steps, f"{result.tokens:,}",
             "n/a" if result.val_bpb is None else f"{result.val_bpb:.4f}")
    publish_training(ds.base, result, pl.read_parquet(result.run_dir / METRICS_NAME))
    events.model_trained(ds.root, ds.name, tokens.meta.get("dataset_version"), out, result.val_bpb)
    return TrainAfterBuild(tokens, result, sample_run(result.run_dir, prompt=prompt, max_new_tokens=120))
