"""The `build-corpus` flow: crawl files in, a versioned Delta Lake dataset of clean documents out.

The steps are flows/build_steps.py's; here they run as Prefect tasks (planning, each group of
inputs committed with retries) and a near-dedup subflow, so a Prefect server records each of them.
"""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.build_steps import COMMIT_RETRY_DELAYS, BuildSteps, BuildSummary, commit_inputs, plan_inputs, run_build
from flows.near_dedup import near_dedup
from pipeline.config import BuildConfig
from warehouse.layout import DEFAULT_ROOT, DatasetPaths

PREFECT_STEPS = BuildSteps(
    plan=task(plan_inputs, name="plan-inputs", cache_policy=NO_CACHE),
    commit=task(commit_inputs, name="commit-inputs", cache_policy=NO_CACHE, retries=len(COMMIT_RETRY_DELAYS),
                retry_delay_seconds=list(COMMIT_RETRY_DELAYS)),
    near_dedup=near_dedup,
)


@flow(name="build-corpus", log_prints=True)
def build_corpus(
    inputs: list[str],
    warehouse: str = DEFAULT_ROOT,
    dataset: str = "default",
    config: BuildConfig | None = None,
    progress: bool = True,
    dask_address: str | None = None,
    lock_wait: float = 0.0,
    retry_failed: bool = False,
) -> BuildSummary:
    """Build (or extend) dataset `dataset` in `warehouse` from crawl files, folders, globs or URLs.
    One build of a dataset at a time: another one running makes this one wait up to `lock_wait`
    seconds, then fail (DatasetBusy). `retry_failed`: see flows.build_steps.plan_inputs."""
    return run_build(inputs, DatasetPaths(warehouse, dataset), config or BuildConfig(), PREFECT_STEPS,
                     progress, dask_address, lock_wait, retry_failed)
