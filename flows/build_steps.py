"""The build's steps, without Prefect: what `build-corpus` does, callable as plain functions.

`run_build` is the body of the build-corpus flow (flows/build_corpus.py). The flow passes it its
Prefect tasks (`BuildSteps`); `tokenmill build` with no Prefect API configured passes the plain
functions instead (`IN_PROCESS`), so a build needs no API server and never imports Prefect: run as
a flow on Prefect's temporary API server, a one-record build costs about 16 CPU-seconds more
(bench/results/build.md), many times its work. Same steps, same order, same commits; only the run
records (and the server's artifacts and events) differ.

Inputs (files: a folder or glob is expanded to its files) are processed `workers` at a time (all
cores by default), each in a supervised worker process (pipeline/workers.py) of a thread: here a
plain thread pool, in the flow one Prefect task per input (flows/input_tasks.py). Their outputs
are committed in input order by this process, small ones grouped into one transaction, with exact
dedup applied as they are committed. Inputs already committed
are skipped, so a killed build resumes where it stopped.
Then near-duplicates are removed over the whole dataset, and the build's versions are recorded.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipeline.config import BuildConfig, DedupConfig
from pipeline.exact_dedup import ExactDeduplicator, split_resolved
from pipeline.process import DOCS_SCHEMA, DocumentPipeline, UnitOutput
from pipeline.readers import InputUnit, expand_inputs
from pipeline.forkserver import start_forkserver
from pipeline.workers import UnitFailure, run_supervised
from warehouse import commit
from flows.settings import dask_address as resolve_dask_address
from warehouse.errors import UsageError
from warehouse.layout import DatasetPaths
from warehouse.lineage import git_commit
from warehouse.lock import writer_lock
from warehouse.read import open_table
from warehouse.schema import DATASET_SOURCE, SHARDS_SCHEMA, STAGES_SCHEMA

if TYPE_CHECKING:  # imported where used: a build without decontamination never loads numba
    from pipeline.decontaminate import DecontaminationReport
    from pipeline.dedup import DedupReport

# Inputs are committed in groups of up to this many records or inputs (single HTML pages, short
# JSONL files): a transaction per table per page would cost more than the page; each input still
# gets its own commit marker. A group waiting this many seconds is committed anyway.
GROUP_RECORDS = 1000
GROUP_INPUTS = 256
GROUP_SECONDS = 10.0
# What `--retry-failed` reads again: failures that may have been the moment's, not the file's.
RETRIED_REASONS = ("read_error", "worker_crashed")
# A commit that fails (a transient I/O error) is retried after these pauses, in seconds, as the
# flow's commit-inputs task is.
COMMIT_RETRY_DELAYS = (1, 5, 20)


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


def plan_inputs(inputs: list[str], ds: DatasetPaths, retry_failed: bool = False) -> tuple[list[InputUnit], int]:
    """The inputs to build, and how many are skipped as committed. With `retry_failed`, committed
    inputs that ended in a `read_error` or `worker_crashed` reject are read again."""
    units = expand_inputs(inputs)
    done = commit.done_inputs(ds, [u.key for u in units])
    if retry_failed:
        from pipeline.dedup.store import forget_sources

        retried = commit.sources_with_reasons(ds, done, RETRIED_REASONS)
        forget_sources(ds, retried)
        done -= retried
    todo = [u for u in units if u.key not in done]
    return todo, len(units) - len(todo)


def commit_inputs(ds: DatasetPaths, keys: list[str], tables: dict[str, pa.Table]) -> None:
    """Some inputs' output as one transaction per table."""
    commit.commit_shard(ds, keys, tables["docs"], tables["rejects"], tables["stages"], tables["shard"], DOCS_SCHEMA,
                        tables.get("filtered"))


def commit_inputs_retrying(ds: DatasetPaths, keys: list[str], tables: dict[str, pa.Table]) -> None:
    """`commit_inputs`, retried on any error as the flow's task is (a commit is idempotent: see
    warehouse/commit.py)."""
    for attempt, delay in enumerate(COMMIT_RETRY_DELAYS, 1):
        try:
            return commit_inputs(ds, keys, tables)
        except Exception as exc:  # noqa: BLE001 - retried, then raised by the last attempt below
            logging.getLogger("tokenmill").warning(
                "commit of %s failed (attempt %d of %d), retrying in %g s: %s: %s", ", ".join(keys), attempt,
                len(COMMIT_RETRY_DELAYS) + 1, delay, type(exc).__name__, exc)
            time.sleep(delay)
    commit_inputs(ds, keys, tables)


def unit_tables(out: UnitOutput, build_id: str, keep_filtered: bool = False) -> dict[str, pa.Table]:
    """One input's rows as tables, before exact dedup (`group_tables`). `keep_filtered`: also the full
    rows of quality-rejected documents (`[quality] keep_rejected_text`)."""
    tables = {"docs": out.docs_table(), "rejects": out.rejects_table(), "stages": out.stages_table(build_id)}
    if keep_filtered:
        tables["filtered"] = out.filtered_table()
    return tables


def group_tables(group: list[tuple[UnitOutput, dict[str, pa.Table]]], dedup: ExactDeduplicator | None,
                 build_id: str) -> dict[str, pa.Table]:
    """One commit's tables: its inputs' rows in input order, and each input's shard row.

    Exact dedup splits the group's documents at once: one read of the committed hashes per commit,
    not per input, and its filters run over the whole group, each input then taking its slices.
    (Per input, those small reads and filters cost the parent about 0.5 CPU-second of a 2-worker build
    of 80 files, taken from the workers' cores.)
    The first copy in input order is kept, as input after input would keep it."""
    counts = [tables["docs"].num_rows for _, tables in group]
    docs = pa.concat_tables([tables["docs"] for _, tables in group])
    text_bytes = pc.binary_length(docs.column("text")).to_numpy().astype(np.int64)
    kept = np.ones(docs.num_rows, dtype=bool)
    copies = None
    if dedup is not None:
        resolved = dedup.resolve(docs)
        kept = resolved["kept"].to_numpy()
        docs, copies = split_resolved(docs, resolved)
    kept_per_input = _per_input(kept, counts)
    if copies is not None:
        exact_rows = pa.Table.from_pylist(
            [{"source": out.unit.key, "build_id": build_id, "stage": "exact_dedup", "records_in": count,
              "records_out": kept_n, "dropped": count - kept_n, "seconds": 0.0}
             for (out, _), count, kept_n in zip(group, counts, kept_per_input)],
            schema=STAGES_SCHEMA,
        )

    rejects, stages, shards = [], [], []
    copies_at = 0
    for i, ((out, tables), count, kept_n, text_n) in enumerate(
            zip(group, counts, kept_per_input, _per_input(text_bytes * kept, counts))):
        copies_n = count - kept_n
        rejects.append(tables["rejects"])
        stages.append(tables["stages"])
        if copies is not None:
            rejects.append(copies.slice(copies_at, copies_n))
            stages.append(exact_rows.slice(i, 1))
            copies_at += copies_n
        shards.append({"source": out.unit.key, "build_id": build_id, "records": out.records, "docs": kept_n,
                       "rejects": tables["rejects"].num_rows + copies_n, "bytes_in": out.unit.size_bytes,
                       "text_bytes": text_n, "seconds": out.seconds, "committed_at": commit.now()})
    tables = {"docs": docs, "rejects": pa.concat_tables(rejects), "stages": pa.concat_tables(stages),
              "shard": pa.Table.from_pylist(shards, schema=SHARDS_SCHEMA)}
    if "filtered" in group[0][1]:
        tables["filtered"] = pa.concat_tables([t["filtered"] for _, t in group])
    return tables


def _per_input(values: np.ndarray, counts: list[int]) -> list[int]:
    """The sums of `values` over consecutive runs of `counts` rows (one run per input)."""
    totals = np.concatenate([[0], np.cumsum(values, dtype=np.int64)])
    ends = np.cumsum(counts)
    return [int(totals[end] - totals[end - count]) for end, count in zip(ends, counts)]


def run_units(units: list[InputUnit], cfg: BuildConfig, workers: int, runner: str | None = "process",
              dask_address: str | None = None) -> Iterator[UnitOutput | UnitFailure]:
    """Each unit's output in input order, up to `workers` units at once, in supervised worker
    processes that a record past its time budget, or one that kills them, cannot hold up
    (pipeline.workers), on a plain thread pool: no Prefect. The flow's runners, Prefect's thread
    pool and Dask, are flows/input_tasks.py's."""
    check_no_dask(runner, dask_address)
    return run_supervised(units, cfg, workers)


def check_no_dask(runner: str | None = "process", dask_address: str | None = None) -> None:
    """The in-process build runs nothing on Dask: asked to (by `runner`, `dask_address` or
    TOKENMILL_DASK_ADDRESS), it says so before any input is read."""
    address = resolve_dask_address(dask_address)
    runner = runner or "process"
    if runner != "process" or address:
        why = f"runner {runner!r}" if runner != "process" else f"Dask scheduler {address} (--dask-address or TOKENMILL_DASK_ADDRESS)"
        raise UsageError(f"{why}: Dask runs through Prefect; drop --no-prefect (or set PREFECT_API_URL), "
                         "or unset TOKENMILL_DASK_ADDRESS")


def log_decontamination(log: logging.Logger | logging.LoggerAdapter, ds: DatasetPaths,
                        report: DecontaminationReport) -> None:
    """The decontamination report's log line, the same from the flow and from the in-process build."""
    log.info("decontamination of %s: %d of %d documents removed %s", ds.base, report.removed, report.documents,
             report.per_file)


def decontaminate_in_process(ds: DatasetPaths, cfg, build_id: str | None = None,
                             progress: bool = True) -> DecontaminationReport:
    """The decontamination stage as flows/decontaminate.py runs it: the n-gram index, then the docs."""
    from pipeline.decontaminate import NgramIndex, decontaminate_dataset

    report = decontaminate_dataset(ds, NgramIndex.build(cfg.against, cfg.ngram, progress), build_id, progress)
    log_decontamination(logging.getLogger("tokenmill"), ds, report)
    return report


def no_publishing(ds: DatasetPaths, build_id: str, summary: BuildSummary, version_before: int | None) -> None:
    """Artifacts and events need a Prefect server: the in-process build has none to publish to."""


def near_dedup_in_process(ds: DatasetPaths, cfg: DedupConfig, dask_address: str | None = None,
                          build_id: str | None = None) -> DedupReport:
    """The near-dedup stage on this machine's threads, recorded in `stats/stages` as the flow does."""
    from pipeline.dedup import dedup_dataset

    check_no_dask(dask_address=dask_address)
    build_id = build_id or commit.new_build_id()
    started = time.perf_counter()
    report = dedup_dataset(ds, cfg, progress=False, run_id=build_id)
    record_dedup_stage(ds, report, time.perf_counter() - started, build_id)
    return report


def record_dedup_stage(ds: DatasetPaths, report: DedupReport, seconds: float, build_id: str) -> None:
    """The near-dedup stage's row in `stats/stages` under `build_id` (the run id its removals were
    written down under), then those pending removals cleared."""
    from pipeline.dedup.store import clear_pending_apply

    remaining = open_table(ds, "docs").to_pyarrow_dataset().count_rows()
    commit.record_stage(ds, commit.stage_row(
        DATASET_SOURCE, build_id, "dedup",
        records_in=remaining + report.removed, dropped=report.removed, seconds=seconds,
    ))
    clear_pending_apply(ds)  # counted now (a kill before this line: the row above says so)


@dataclass(frozen=True)
class BuildSteps:
    """How `run_build` runs its steps: plain calls here, Prefect tasks and a subflow in the flow."""

    plan: Callable = plan_inputs
    commit: Callable = commit_inputs_retrying
    near_dedup: Callable = near_dedup_in_process
    decontaminate: Callable = decontaminate_in_process
    run_units: Callable = run_units
    log: Callable[[], logging.Logger | logging.LoggerAdapter] = lambda: logging.getLogger("tokenmill")
    publish: Callable = no_publishing  # artifacts and events, once the build is recorded


IN_PROCESS = BuildSteps()


def run_build(inputs: list[str], ds: DatasetPaths, cfg: BuildConfig, steps: BuildSteps = IN_PROCESS,
              progress: bool = True, dask_address: str | None = None, lock_wait: float = 0.0,
              retry_failed: bool = False, runner: str | None = None) -> BuildSummary:
    """Build (or extend) dataset `ds` from crawl files, folders, globs or URLs.
    One build of a dataset at a time: another one running makes this one wait up to `lock_wait`
    seconds, then fail (DatasetBusy). `retry_failed`: see plan_inputs. `runner`: the task runner
    of the inputs (default: the config's; `steps.run_units` says what it means)."""
    runner = runner or cfg.runner
    build_id = commit.new_build_id()
    if runner == "process" and not resolve_dask_address(dask_address):
        start_forkserver()  # the workers' imports overlap the checks below (a no-op where the CLI started it)
    # Every stage runs once here, before any input is read: a broken model or setting is one error
    # now, not a reject (or a crashed worker) for every record.
    DocumentPipeline(cfg).check()
    if steps.run_units is run_units or steps.near_dedup is near_dedup_in_process:
        check_no_dask(runner, dask_address)  # now, not after every input is committed
    with writer_lock(ds, f"build {build_id}", wait=lock_wait):
        return _build(inputs, ds, build_id, cfg, steps, progress, dask_address, retry_failed, runner)


def commit_group(steps: BuildSteps, ds: DatasetPaths, group: list[tuple[UnitOutput, dict[str, pa.Table]]],
                 dedup: ExactDeduplicator | None, build_id: str) -> None:
    """The group's tables, after exact dedup, committed by the commit step."""
    tables = group_tables(group, dedup, build_id)
    steps.commit(ds, [out.unit.key for out, _ in group], tables)
    steps.log().info("committed %d input(s), %d records, %d docs: %s", len(group), sum(o.records for o, _ in group),
                      tables["docs"].num_rows, ", ".join(out.unit.key for out, _ in group))


def _build(inputs: list[str], ds: DatasetPaths, build_id: str, cfg: BuildConfig, steps: BuildSteps, progress: bool,
           dask_address: str | None, retry_failed: bool, runner: str) -> BuildSummary:
    started = commit.now()
    version_before = commit.table_version(ds.docs)
    log = steps.log()
    if cfg.decontaminate.against:  # (its module imports the MinHash kernels: a CPU-second)
        from pipeline.decontaminate import check_evaluation_files

        check_evaluation_files(cfg.decontaminate.against)  # before hours of work, not after
    units, skipped = steps.plan(inputs, ds, retry_failed)
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
        for out in steps.run_units(units, cfg, workers, runner, dask_address):
            if isinstance(out, UnitFailure):
                log.warning("not built, read again by the next build: %s: %s", out.unit.key, out.error)
                failed.append(out)
                bar.update(job, advance=1)
                continue
            group.append((out, unit_tables(out, build_id, cfg.quality.keep_rejected_text)))
            records += out.records
            if (sum(o.records for o, _ in group) >= GROUP_RECORDS or len(group) >= GROUP_INPUTS
                    or time.monotonic() - group_started >= GROUP_SECONDS):
                commit_group(steps, ds, group, dedup, build_id)
                bar.update(job, advance=len(group), records=records)
                group, group_started = [], time.monotonic()
        if group:
            commit_group(steps, ds, group, dedup, build_id)
            bar.update(job, advance=len(group), records=records)

    near = None
    # An empty docs table has no near-duplicates: the stage (its reads and writes) is skipped.
    if cfg.dedup.near and commit.table_version(ds.docs) is not None and open_table(ds, "docs").to_pyarrow_dataset().count_rows():
        cfg = cfg.model_copy(update={"dedup": cfg.dedup.banded()})  # the builds row records the bands used
        near = steps.near_dedup(ds, cfg.dedup, dask_address, build_id)

    decontaminated = None
    if cfg.decontaminate.against and commit.table_version(ds.docs) is not None:
        decontaminated = steps.decontaminate(ds, cfg.decontaminate, build_id, progress)

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
    steps.publish(ds, build_id, summary, version_before)
    return summary
