"""The `build-corpus` flow: crawl files in, a versioned Delta Lake dataset of clean documents out.

Inputs are processed in a process pool (all cores by default); their outputs are committed in
input order by this process, one input per transaction, with exact dedup applied as they are
committed. Inputs already committed are skipped, so a killed build resumes where it stopped.
Then near-duplicates are removed over the whole dataset, and the build's versions are recorded.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flows.near_dedup import near_dedup
from pipeline.config import BuildConfig
from pipeline.dedup import DedupReport
from pipeline.exact_dedup import ExactDeduplicator
from pipeline.process import DOCS_SCHEMA, DocumentPipeline, UnitOutput, rejection_row
from pipeline.records import Rejection
from pipeline.readers import InputUnit, expand_inputs
from warehouse import commit
from warehouse.layout import DEFAULT_ROOT, DatasetPaths
from warehouse.lineage import git_commit
from warehouse.schema import SHARDS_SCHEMA

# A worker that dies (segfault, out of memory) takes the pool down; its inputs are retried this
# many times in a fresh pool before they are written off as rejects.
WORKER_CRASH_RETRIES = 1

_PIPELINE: DocumentPipeline | None = None


def _init_worker(config_json: str) -> None:
    global _PIPELINE
    _PIPELINE = DocumentPipeline(BuildConfig.model_validate_json(config_json))


def _process(unit: InputUnit) -> UnitOutput:
    assert _PIPELINE is not None
    return _PIPELINE.process_unit(unit)


@dataclass
class BuildSummary:
    dataset: str
    build_id: str
    inputs: int
    inputs_skipped: int
    docs_version: int | None
    rejects_version: int | None
    near_dedup: DedupReport | None = None


@task(name="plan-inputs", cache_policy=NO_CACHE)
def plan_inputs(inputs: list[str], ds: DatasetPaths) -> tuple[list[InputUnit], int]:
    units = expand_inputs(inputs)
    done = commit.committed_sources(ds)
    todo = [u for u in units if u.key not in done]
    return todo, len(units) - len(todo)


@task(name="commit-input", cache_policy=NO_CACHE, retries=3, retry_delay_seconds=[1, 5, 20])
def commit_input(ds: DatasetPaths, key: str, paths: tuple[str, ...], tables: dict[str, pa.Table]) -> None:
    """One input's output as one transaction (retried on transient I/O errors)."""
    commit.commit_shard(ds, key, paths, tables["docs"], tables["rejects"], tables["stages"], tables["shard"], DOCS_SCHEMA,
                        tables.get("filtered"))


def commit_tables(out: UnitOutput, dedup: ExactDeduplicator | None, build_id: str,
                  keep_filtered: bool = False) -> tuple[dict[str, pa.Table], dict]:
    """The tables to commit for one input, after exact dedup; and the dedup index's new entries.
    `keep_filtered`: also the full rows of quality-rejected documents (`[quality] keep_rejected_text`)."""
    docs, rejects, stages = out.docs_table(), out.rejects_table(), out.stages_table(build_id)
    new_hashes: dict = {}
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


def _crashed_output(unit: InputUnit, error: str) -> UnitOutput:
    """An input whose worker kept dying: its file is written off as one rejection, never lost silently."""
    out = UnitOutput(unit)
    # Built like every other rejection, so its id is the stable hash of (source, offset) too.
    out.rejects.append(rejection_row(Rejection(unit.key, 0, "read", "worker_crashed", error)))
    out.stages["read"].records_in = 1
    out.stages["read"].dropped = 1
    return out


def run_units(units: list[InputUnit], cfg: BuildConfig, workers: int):
    """Yield each unit's output in input order, processing up to `workers` units at once."""
    if workers <= 1 or len(units) <= 1:
        pipeline = DocumentPipeline(cfg)
        for unit in units:
            yield pipeline.process_unit(unit)
        return

    context = multiprocessing.get_context("forkserver")
    # Workers fork from a server that has already imported the pipeline: fast start, no Prefect threads.
    context.set_forkserver_preload(["pipeline.process"])
    attempts = dict.fromkeys(range(len(units)), 0)
    ready: dict[int, UnitOutput] = {}
    next_index = 0
    pending = list(range(len(units)))
    while next_index < len(units):
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(cfg.model_dump_json(),)) as pool:
            # Submit a bounded window so results committed in order never pile up in memory.
            futures: dict[int, Future] = {}
            broken = False
            while (pending or futures) and not broken:
                while pending and len(futures) < 2 * workers:
                    i = pending.pop(0)
                    futures[i] = pool.submit(_process, units[i])
                i = min(futures)
                try:
                    ready[i] = futures.pop(i).result()
                except BrokenProcessPool as exc:
                    broken = True
                    for j in sorted(futures) + [i]:
                        attempts[j] += 1
                        if attempts[j] > WORKER_CRASH_RETRIES:
                            ready[j] = _crashed_output(units[j], f"worker process died: {exc}")
                        else:
                            pending.append(j)
                    pending.sort()
                while next_index in ready:
                    yield ready.pop(next_index)
                    next_index += 1


@flow(name="build-corpus", log_prints=True)
def build_corpus(
    inputs: list[str],
    warehouse: str = DEFAULT_ROOT,
    dataset: str = "default",
    config: BuildConfig | None = None,
    progress: bool = True,
    dask_address: str | None = None,
) -> BuildSummary:
    """Build (or extend) dataset `dataset` in `warehouse` from crawl files, folders, globs or URLs."""
    cfg = config or BuildConfig()
    ds = DatasetPaths(warehouse, dataset)
    build_id = commit.new_build_id()
    started = commit.now()
    units, skipped = plan_inputs(inputs, ds)
    dedup = ExactDeduplicator.for_dataset(ds) if cfg.dedup.exact else None
    workers = min(cfg.workers or os.cpu_count() or 1, max(len(units), 1))

    columns = [TextColumn("[bold]build-corpus[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("inputs"),
               TextColumn("{task.fields[records]} records"), TimeElapsedColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        job = bar.add_task("inputs", total=len(units), records=0)
        records = 0
        for out in run_units(units, cfg, workers):
            tables, new_hashes = commit_tables(out, dedup, build_id, cfg.quality.keep_rejected_text)
            commit_input(ds, out.unit.key, out.unit.paths, tables)
            if dedup is not None:
                dedup.remember(new_hashes)
            records += out.records
            bar.update(job, advance=1, records=records)

    near = None
    if cfg.dedup.near and commit.table_version(ds.docs) is not None:
        cfg = cfg.model_copy(update={"dedup": cfg.dedup.banded()})  # the builds row records the bands used
        near = near_dedup(ds, cfg.dedup, dask_address, build_id)

    summary = BuildSummary(dataset, build_id, len(units) + skipped, skipped,
                           commit.table_version(ds.docs), commit.table_version(ds.rejects), near)
    commit.record_build(ds, {
        "build_id": build_id, "started_at": started, "finished_at": commit.now(),
        "inputs": summary.inputs, "inputs_skipped": skipped,
        "docs_version": summary.docs_version, "rejects_version": summary.rejects_version,
        "config_json": cfg.model_dump_json(), "code_version": git_commit(short=True),
    })
    return summary
