"""The `build-corpus` flow: crawl files in, a versioned Delta Lake dataset of clean documents out.

Inputs (files: a folder or glob is expanded to its files) are processed in a process pool (all
cores by default); their outputs are committed in input order by this process, small ones grouped
into one transaction, with exact dedup applied as they are committed. Inputs already committed
are skipped, so a killed build resumes where it stopped.
Then near-duplicates are removed over the whole dataset, then documents sharing n-grams with
evaluation sets (when the config names any), and the build's versions are recorded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows import events
from flows.artifacts import publish_build
from flows.dataset_limit import one_build_per_dataset
from flows.decontaminate import decontaminate
from flows.near_dedup import near_dedup
from flows.run_logger import run_logger
from flows.settings import absolute
from flows.on_dask import dask_address as resolve_dask_address
from flows.on_dask import run_on_dask
from pipeline.config import BuildConfig
from pipeline.decontaminate import DecontaminationReport, check_evaluation_files
from pipeline.dedup import DedupReport
from pipeline.dedup.store import forget_sources
from pipeline.exact_dedup import ExactDeduplicator
from pipeline.process import DOCS_SCHEMA, DocumentPipeline, UnitOutput
from pipeline.readers import InputUnit, expand_inputs
from pipeline.workers import UnitFailure, run_supervised
from warehouse import commit
from warehouse.layout import DEFAULT_ROOT, DatasetPaths
from warehouse.lineage import git_commit
from warehouse.lock import writer_lock
from warehouse.schema import SHARDS_SCHEMA

# Inputs are committed in groups of up to this many records or inputs (single HTML pages, short
# JSONL files): a transaction per table per page would cost more than the page; each input still
# gets its own commit marker. A group waiting this many seconds is committed anyway.
GROUP_RECORDS = 1000
GROUP_INPUTS = 256
GROUP_SECONDS = 10.0
# What `--retry-failed` reads again: failures that may have been the moment's, not the file's.
RETRIED_REASONS = ("read_error", "worker_crashed")

@dataclass
class BuildSummary:
    dataset: str
    build_id: str
    inputs: int
    inputs_skipped: int
    docs_version: int | None
    rejects_version: int | None
    near_dedup: DedupReport | None = None
    # Inputs left unbuilt because of their environment (a disk or network error, a worker that
    # kept dying outside any record): not marked done, so the next build reads them again.
    failed: list[UnitFailure] = field(default_factory=list)
    decontamination: DecontaminationReport | None = None


@task(name="plan-inputs", cache_policy=NO_CACHE)
def plan_inputs(inputs: list[str], ds: DatasetPaths, retry_failed: bool = False) -> tuple[list[InputUnit], int]:
    """The inputs to build, and how many are skipped as committed. With `retry_failed`, committed
    inputs that ended in a `read_error` or `worker_crashed` reject are read again."""
    units = expand_inputs(inputs)
    done = commit.done_inputs(ds, [u.key for u in units])
    if retry_failed:
        retried = commit.sources_with_reasons(ds, done, RETRIED_REASONS)
        forget_sources(ds, retried)
        done -= retried
    todo = [u for u in units if u.key not in done]
    return todo, len(units) - len(todo)


@task(name="commit-inputs", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 5, 20])
def commit_inputs(ds: DatasetPaths, keys: list[str], tables: dict[str, pa.Table]) -> None:
    """Some inputs' output as one transaction per table (retried on transient I/O errors)."""
    commit.commit_shard(ds, keys, tables["docs"], tables["rejects"], tables["stages"], tables["shard"], DOCS_SCHEMA,
                        tables.get("filtered"))


def commit_group(ds: DatasetPaths, group: list[tuple[UnitOutput, dict[str, pa.Table]]],
                 dedup: ExactDeduplicator | None) -> None:
    tables = {name: pa.concat_tables([t[name] for _, t in group]) for name in group[0][1]}
    commit_inputs(ds, [out.unit.key for out, _ in group], tables)
    run_logger().info("committed %d input(s), %d records, %d docs: %s", len(group), sum(o.records for o, _ in group),
                      tables["docs"].num_rows, ", ".join(out.unit.key for out, _ in group))
    if dedup is not None:
        dedup.committed()  # their documents are in the docs table now, where the next split looks


def commit_tables(out: UnitOutput, dedup: ExactDeduplicator | None, build_id: str,
                  keep_filtered: bool = False) -> tuple[dict[str, pa.Table], pl.DataFrame | None]:
    """The tables to commit for one input, after exact dedup; and the kept hashes for `dedup.remember`.
    `keep_filtered`: also the full rows of quality-rejected documents (`[quality] keep_rejected_text`)."""
    docs, rejects, stages = out.docs_table(), out.rejects_table(), out.stages_table(build_id)
    new_hashes = None
    if dedup is not None:
        docs, copies, new_hashes = dedup.split(docs)
        rejects = pa.concat_tables([rejects, copies])
        stages = pa.concat_tables(
            [stages, commit.stage_row(out.unit.key, build_id, "exact_dedup", docs.num_rows + copies.num_rows, copies.num_rows)]
        )
    shard = pa.Table.from_pylist(
        [
            {
                "source": out.unit.key,
                "build_id": build_id,
                "records": out.records,
                "docs": docs.num_rows,
                "rejects": rejects.num_rows,
                "bytes_in": out.unit.size_bytes,
                "text_bytes": pc.sum(pc.binary_length(docs.column("text"))).as_py() or 0,
                "seconds": out.seconds,
                "committed_at": commit.now(),
            }
        ],
        schema=SHARDS_SCHEMA,
    )
    tables = {"docs": docs, "rejects": rejects, "stages": stages, "shard": shard}
    if keep_filtered:
        tables["filtered"] = out.filtered_table()
    return tables, new_hashes


def run_units(units: list[InputUnit], cfg: BuildConfig, workers: int, runner: str = "process",
              dask_address: str | None = None) -> Iterator[UnitOutput | UnitFailure]:
    """Each unit's output in input order, up to `workers` units at once, in worker processes that a
    record past its time budget, or one that kills them, cannot hold up (pipeline.workers): a pool
    of this process (`runner` "process"), or one `process-input` task per unit on Dask (`runner`
    "dask": a LocalCluster of `workers`, or the cluster at `dask_address`; flows.on_dask)."""
    if runner == "dask" or dask_address:
        return run_on_dask(units, cfg, workers, dask_address)
    return run_supervised(units, cfg, workers)


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
    runner: str = "process",
) -> BuildSummary:
    """Build (or extend) dataset `dataset` in `warehouse` from crawl files, folders, globs or URLs.
    One build of a dataset at a time: another one running makes this one wait up to `lock_wait`
    seconds, then fail (DatasetBusy); under a Prefect server, runs of one dataset first queue on its
    concurrency limit (flows/dataset_limit.py). `retry_failed`: see plan_inputs. `runner`: "process"
    (a pool of this process) or "dask" (a LocalCluster); a `dask_address` runs the inputs and the
    near-dedup tasks on that cluster. A build that commits a new docs version emits `corpus.built`
    (flows/events.py)."""
    if runner not in ("process", "dask"):
        raise ValueError(f"runner must be 'process' or 'dask', got {runner!r}")
    ds = DatasetPaths(warehouse, dataset)
    build_id = commit.new_build_id()
    cfg = config or BuildConfig()
    # Every stage runs once here, before any input is read: a broken model or setting is one error
    # now, not a reject (or a crashed worker) for every record.
    DocumentPipeline(cfg).check()
    with writer_lock(ds, f"build {build_id}", wait=lock_wait):
        return _build(inputs, ds, build_id, cfg, progress, resolve_dask_address(dask_address), retry_failed, runner)


def _build(inputs: list[str], ds: DatasetPaths, build_id: str, cfg: BuildConfig, progress: bool,
           dask_address: str | None, retry_failed: bool, runner: str) -> BuildSummary:
    started = commit.now()
    version_before = commit.table_version(ds.docs)
    log = run_logger()
    check_evaluation_files(cfg.decontaminate.against)  # before hours of work, not after
    units, skipped = plan_inputs(inputs, ds, retry_failed)
    log.info("build %s of %s: %d inputs to process, %d already committed", build_id, ds.base, len(units), skipped)
    dedup = ExactDeduplicator.for_dataset(ds) if cfg.dedup.exact else None
    workers = min(cfg.workers or os.cpu_count() or 1, max(len(units), 1))

    columns = [TextColumn("[bold]build-corpus[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("inputs"),
               TextColumn("{task.fields[records]} records"), TimeElapsedColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        job = bar.add_task("inputs", total=len(units), records=0)
        records = 0
        group: list[tuple[UnitOutput, dict[str, pa.Table]]] = []
        group_started = time.monotonic()
        failed: list[UnitFailure] = []
        for out in run_units(units, cfg, workers, runner, dask_address):
            if isinstance(out, UnitFailure):
                log.warning("not built, read again by the next build: %s: %s", out.unit.key, out.error)
                failed.append(out)
                bar.update(job, advance=1)
                continue
            tables, new_hashes = commit_tables(out, dedup, build_id, cfg.quality.keep_rejected_text)
            if dedup is not None:
                dedup.remember(new_hashes)  # before the next input's split, which may copy this one
            group.append((out, tables))
            records += out.records
            if (sum(o.records for o, _ in group) >= GROUP_RECORDS or len(group) >= GROUP_INPUTS
                    or time.monotonic() - group_started >= GROUP_SECONDS):
                commit_group(ds, group, dedup)
                bar.update(job, advance=len(group), records=records)
                group, group_started = [], time.monotonic()
        if group:
            commit_group(ds, group, dedup)
            bar.update(job, advance=len(group), records=records)

    near = None
    if cfg.dedup.near and commit.table_version(ds.docs) is not None:
        cfg = cfg.model_copy(update={"dedup": cfg.dedup.banded()})  # the builds row records the bands used
        near = near_dedup(ds, cfg.dedup, dask_address, build_id)

    decontaminated = None
    if cfg.decontaminate.against and commit.table_version(ds.docs) is not None:
        decontaminated = decontaminate(ds, cfg.decontaminate, build_id, progress)

    summary = BuildSummary(ds.name, build_id, len(units) + skipped, skipped,
                           commit.table_version(ds.docs), commit.table_version(ds.rejects), near, failed,
                           decontaminated)
    commit.record_build(ds, {
        "build_id": build_id, "started_at": started, "finished_at": commit.now(),
        "inputs": summary.inputs, "inputs_skipped": skipped,
        "docs_version": summary.docs_version, "rejects_version": summary.rejects_version,
        "config_json": cfg.model_dump_json(), "code_version": git_commit(short=True),
    })
    log.info("build %s done: docs version %s, rejects version %s", build_id, summary.docs_version, summary.rejects_version)
    publish_build(ds, build_id, summary.inputs, skipped, summary.docs_version)
    if summary.docs_version is not None and summary.docs_version != version_before:
        events.corpus_built(absolute(ds.root), ds.name, summary.docs_version, build_id)
    return summary
