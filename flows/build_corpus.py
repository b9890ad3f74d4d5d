"""The `build-corpus` flow: crawl files in, a versioned Delta Lake dataset of clean documents out.

The steps are flows/build_steps.py's (its module doc says what a build does); here they run as
Prefect tasks (planning, each input processed by a `process-input` task on a thread pool or on
Dask (flows/input_tasks.py), each group of inputs committed with retries),
near-dedup and decontamination subflows, the run logger, a data-card artifact and a
`corpus.built` event, so a Prefect server records each of them.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows import events
from flows.artifacts import publish_build
from flows.build_steps import (
    COMMIT_RETRY_DELAYS,
    BuildSteps,
    BuildSummary,
    commit_inputs,
    plan_inputs,
    run_build,
)
from flows.dataset_limit import one_build_per_dataset
from flows.decontaminate import decontaminate
from flows.near_dedup import near_dedup
from flows.input_tasks import RUNNERS, run_as_tasks
from flows.on_dask import dask_address as resolve_dask_address
from flows.run_logger import run_logger
from flows.settings import absolute
from pipeline.config import BuildConfig
from warehouse.layout import DEFAULT_ROOT, DatasetPaths


def publish(ds: DatasetPaths, build_id: str, summary: BuildSummary, version_before: int | None) -> None:
    """The build's data card as an artifact; `corpus.built` when it committed a new docs version."""
    publish_build(ds, build_id, summary.inputs, summary.inputs_skipped, summary.docs_version)
    if summary.docs_version is not None and summary.docs_version != version_before:
        events.corpus_built(absolute(ds.root), ds.name, summary.docs_version, build_id)


PREFECT_STEPS = BuildSteps(
    plan=task(plan_inputs, name="plan-inputs", cache_policy=NO_CACHE),
    commit=task(commit_inputs, name="commit-inputs", cache_policy=NO_CACHE, retries=len(COMMIT_RETRY_DELAYS),
                retry_delay_seconds=list(COMMIT_RETRY_DELAYS)),
    near_dedup=near_dedup,
    decontaminate=decontaminate,
    run_units=run_as_tasks,
    log=run_logger,
    publish=publish,
)


@flow(name="build-corpus", log_prints=True)
@one_build_per_dataset
def build_corpus(
    inputs: list[str],
    warehouse: str = DEFAULT_ROOT,
    dataset: str = "default",
    config: BuildConfig | None = None,
    progress: bool = True,
    dask_address: str | None = None,
    lock_wait: float = 0.0,
    retry_failed: bool = False,
    runner: str | None = None,
) -> BuildSummary:
    """Build (or extend) dataset `dataset` in `warehouse` from crawl files, folders, globs or URLs.
    One build of a dataset at a time: another one running makes this one wait up to `lock_wait`
    seconds, then fail (DatasetBusy); under a Prefect server, runs of one dataset first queue on its
    concurrency limit (flows/dataset_limit.py). `retry_failed`: see flows.build_steps.plan_inputs.
    Each input is a `process-input` task run (flows/input_tasks.py) on the task runner `runner`
    names (default: the config's): "process", Prefect's thread pool, each thread supervising a
    worker process; or "dask", a LocalCluster of `workers` processes. A `dask_address` runs the
    inputs and the near-dedup tasks on that cluster. A build that commits a new docs version emits
    `corpus.built` (flows/events.py)."""
    config = config or BuildConfig()
    runner = runner or config.runner
    if runner not in RUNNERS:
        raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")
    return run_build(inputs, DatasetPaths(warehouse, dataset), config, PREFECT_STEPS,
                     progress, resolve_dask_address(dask_address), lock_wait, retry_failed, runner)
