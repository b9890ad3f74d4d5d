"""The `ablate` flow: variants of one build, proxy models trained on each at equal compute, a verdict.

Each step is a function of ablation/ablate.py; here every proxy run is a task, so a deployment can
run an ablation after a build and the Prefect UI shows each run.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from ablation.ablate import (
    AblationReport,
    AblationSettings,
    Prepared,
    finish,
    prepare,
    seeds,
    token_budget,
    train_variant_seed,
)


@task(name="prepare-variants", cache_policy=NO_CACHE)
def prepare_task(dataset: str, variants: list[str], eval_file: str, out: str, settings: AblationSettings) -> Prepared:
    return prepare(dataset, variants, eval_file, out, settings)


@task(name="token-budget", cache_policy=NO_CACHE)
def budget_task(prepared: Prepared) -> int:
    return token_budget(prepared)


@task(name="proxy-run", cache_policy=NO_CACHE, task_run_name="{variant}-seed{seed}")
def run_task(prepared: Prepared, variant: str, seed: int, max_tokens: int) -> tuple[list[dict], pl.DataFrame]:
    return train_variant_seed(prepared, variant, seed, max_tokens)


@flow(name="ablate", log_prints=True)
def ablate(dataset: str, variants: list[str], eval_file: str, out: str,
           settings: AblationSettings | None = None) -> AblationReport:
    """Train `settings.seeds` proxy models per variant of `dataset` (DIR/NAME) and compare them on
    `eval_file` and on every variant's held-out text; results under `out`."""
    settings = settings or AblationSettings(seconds=45)
    prepared = prepare_task(dataset, variants, str(eval_file), str(Path(out)), settings)
    max_tokens = budget_task(prepared)
    rows, curves = [], []
    # One run at a time: the runs share the machine's cores, and parallel runs would only slow each other.
    for v in prepared.variants:
        for seed in seeds(settings):
            print(f"training {v.name}, seed {seed}: {max_tokens:,} tokens")
            run_rows, curve = run_task(prepared, v.name, seed, max_tokens)
            rows += run_rows
            curves.append(curve)
    return finish(prepared, max_tokens, rows, curves)
