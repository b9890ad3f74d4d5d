"""The near-duplicate stage as Prefect tasks: signatures per shard, candidates per band.

On one machine the tasks run on threads (the MinHash kernels release the GIL). Given a Dask
scheduler address (`--dask-address`, or TOKENMILL_DASK_ADDRESS), the same tasks run on the
cluster's workers through prefect-dask, so no single worker ever holds the whole index: a worker
signs one shard, or groups one band, and writes its result to the warehouse.
"""

from __future__ import annotations

import os
import time

from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.build_steps import record_dedup_stage
from flows.on_dask import dask_address as resolve_dask_address
from flows.run_logger import run_logger
from pipeline.config import DedupConfig
from pipeline.dedup import DedupReport, compute_shard_signatures, dedup_dataset, group_band
from warehouse import commit
from warehouse.layout import DatasetPaths

sign_shard = task(compute_shard_signatures, name="dedup-sign-shard", cache_policy=NO_CACHE, retries=2)
group_candidates = task(group_band, name="dedup-group-band", cache_policy=NO_CACHE, retries=2)
TASKS = {compute_shard_signatures: sign_shard, group_band: group_candidates}


def task_runner(dask_address: str | None):
    address = resolve_dask_address(dask_address)
    if address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=address)
    return ThreadPoolTaskRunner(max_workers=len(os.sched_getaffinity(0)))


def near_dedup(
    ds: DatasetPaths, cfg: DedupConfig, dask_address: str | None = None, build_id: str | None = None
) -> DedupReport:
    """Run the `near-dedup` flow (a subflow when called from build-corpus) on the right task runner,
    then add its row to `stats/stages` under `build_id` (a new id when run on its own)."""
    runner_flow = _near_dedup.with_options(task_runner=task_runner(dask_address))
    build_id = build_id or commit.new_build_id()
    started = time.perf_counter()
    report = runner_flow(ds, cfg, build_id)
    # the whole flow: signing and banding run in its tasks
    record_dedup_stage(ds, report, time.perf_counter() - started, build_id)
    return report


def map_tasks(step, ds: DatasetPaths, items: list, **fixed) -> list:
    """`pipeline.dedup.MapSteps` as Prefect tasks on the flow's task runner."""
    if not items:
        return []
    return TASKS[step].map(unmapped(ds), items, **{k: unmapped(v) for k, v in fixed.items()}).result()


@flow(name="near-dedup")
def _near_dedup(ds: DatasetPaths, cfg: DedupConfig, run_id: str) -> DedupReport:
    report = dedup_dataset(ds, cfg, map_steps=map_tasks, run_id=run_id)
    run_logger().info("near-dedup of %s: %d shards signed, %d near-duplicates removed in %d clusters",
                      ds.base, report.shards_signed, report.removed, report.clusters)
    return report
