"""Near-duplicate removal over a whole dataset: signatures per shard, candidates per band, clusters.

    prepare_signatures        which sources still need signatures (and rebanding after a bands change)
    compute_shard_signatures  one source's documents -> dedup/signatures/<shard>.parquet   (parallel)
    record_signatures         list the new shards in the manifest (fixes the doc numbering)
    group_band                one band over the whole store -> dedup/candidates/band_NN   (parallel)
    resolve_duplicates        pairs -> exact Jaccard check -> union-find -> keeper rule -> docs/rejects

`dedup_dataset` runs them in order, mapping the two parallel steps with a `MapSteps`: on threads
by default, as Prefect tasks in the near-dedup flow (flows/near_dedup.py, on threads or a Dask
cluster), so no worker ever holds more than one shard or one band. Signatures are
computed only for sources that have none yet, so a later build of the dataset signs only its new
inputs and is compared with every earlier document, including those removed before.

Removed documents go to `rejects` with stage `dedup`, reason `near_duplicate` and detail = id of
the document kept for their cluster; the kept one gets `dup_cluster` = its own id. Both writes are
idempotent, so a run killed half-way and run again gives the same result as one clean run.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from pipeline.config import DedupConfig
from pipeline.dedup.candidates import group_band, read_pairs
from pipeline.dedup.minhash import from_lean_bytes, signatures, to_lean_bytes
from pipeline.dedup.store import (
    Manifest,
    SignatureParams,
    band_table,
    read_manifest,
    read_pending_apply,
    reband,
    shard_id,
    signature_schema,
    write_manifest,
    write_pending_apply,
    write_shard,
)
from pipeline.dedup.unionfind import choose_keepers, cluster_labels, clustered_docs
from pipeline.dedup.verify import verify_pairs
from warehouse.commit import move_to_rejects
from warehouse.layout import DatasetPaths
from warehouse.read import open_table, scan
from warehouse.schema import DATASET_SOURCE

BATCH_DOCS = 2048  # documents per signature batch: ~1 MB of text, amortises the kernel call
REJECT_STAGE = "dedup"
REJECT_REASON = "near_duplicate"
T = TypeVar("T")


@dataclass
class ShardSignatures:
    """What one `compute_shard_signatures` call wrote."""

    shard: str
    source: str
    docs: int
    docs_version: int  # the docs table version the texts were read from
    seconds: float


@dataclass
class DedupReport:
    documents: int = 0  # in the signature store: this build's and every earlier one's
    signed: int = 0  # documents signed by this run
    shards_signed: int = 0
    bands: int = 0
    rows: int = 0
    candidate_pairs: int = 0
    false_positives: int = 0  # candidate pairs the exact Jaccard check dropped
    clusters: int = 0  # clusters with a document still in docs
    removed: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def docs_sources(ds: DatasetPaths) -> set[str]:
    """The distinct `source` values of the docs table."""
    column = open_table(ds, "docs").to_pyarrow_dataset().to_table(columns=["source"]).column("source")
    return set(pc.unique(column).to_pylist())


def prepare_signatures(ds: DatasetPaths, cfg: DedupConfig) -> tuple[Manifest, list[str]]:
    """The manifest this run builds on, and the sources of docs that have no signatures yet.

    Stored signatures made with other (num_perm, seed, ngram) are dropped from the manifest and
    computed again; a new threshold only rebands the stored signatures.
    """
    params = SignatureParams.from_config(cfg)
    manifest = read_manifest(ds)
    if manifest is None or not manifest.params.same_signatures(params):
        manifest = Manifest(params, {})
    elif manifest.params != params:
        for shard in manifest.shards:
            reband(ds, shard, params)
        manifest = Manifest(params, manifest.shards)
        write_manifest(ds, manifest)
    return manifest, sorted(docs_sources(ds) - manifest.sources)


def signature_batch(batch: pa.RecordBatch | pa.Table, source: str, params: SignatureParams) -> pa.Table:
    """The signature-store rows of a batch of documents (id, text, quality_score) from one source."""
    sigs, counts = signatures(batch.column("text"), params.num_perm, params.seed, params.ngram, params.scheme)
    columns = {
        "id": batch.column("id"),
        "source": pa.array([source] * batch.num_rows, pa.string()),
        "quality_score": batch.column("quality_score"),
        "shingles": pa.array(counts.astype(np.int32)),
        **band_table(sigs, counts, params),
        "signature": to_lean_bytes(sigs, params.seed, params.scheme),
    }
    return pa.table(columns, schema=signature_schema(params))


def compute_shard_signatures(ds: DatasetPaths, source: str, cfg: DedupConfig) -> ShardSignatures:
    """Sign every document of one source now in docs and write the shard's signature file."""
    start = time.perf_counter()
    params = SignatureParams.from_config(cfg)
    # Polars, not a pyarrow dataset filter: files that delta-rs rewrote (after a merge) carry
    # string_view statistics that pyarrow's filter cannot compare with a string.
    version = open_table(ds, "docs").version()
    docs = scan(ds, version=version).filter(pl.col("source") == source).select("id", "text", "quality_score").collect().to_arrow()
    parts = [signature_batch(batch, source, params) for batch in docs.to_batches(BATCH_DOCS) if batch.num_rows]
    table = pa.concat_tables(parts) if parts else signature_schema(params).empty_table()
    shard = shard_id(source)
    write_shard(ds, shard, table)
    return ShardSignatures(shard, source, table.num_rows, version, time.perf_counter() - start)


def record_signatures(ds: DatasetPaths, manifest: Manifest, results: list[ShardSignatures]) -> Manifest:
    """Append the shards just written to the manifest (in the order given) and save it."""
    shards = dict(manifest.shards)
    for result in results:
        shards[result.shard] = {"source": result.source, "docs": result.docs, "docs_version": result.docs_version}
    manifest = Manifest(manifest.params, shards)
    write_manifest(ds, manifest)
    return manifest


def store_rows(manifest: Manifest, ds: DatasetPaths, docs: np.ndarray, columns: list[str]) -> pl.DataFrame:
    """Rows of the signature store by doc number (row number over the files in manifest order)."""
    if len(docs) == 0 or not manifest.shards:
        return pl.DataFrame({"doc": np.empty(0, np.uint32)}).with_columns([pl.lit(None).alias(c) for c in columns])
    return (
        pl.scan_parquet(manifest.paths(ds), row_index_name="doc")
        .filter(pl.col("doc").is_in(pl.Series(docs.astype(np.uint32)).implode()))
        .select(pl.col("doc").cast(pl.UInt32), *columns)
        .collect(engine="streaming")
    )


def present_ids(ds: DatasetPaths, ids: list[str]) -> set[str]:
    """Which of these ids are in docs now."""
    if not ids:
        return set()
    found = scan(ds).select("id").filter(pl.col("id").is_in(pl.Series(ids, dtype=pl.String).implode())).collect()
    return set(found["id"].to_list())


def carried_removals(ds: DatasetPaths) -> set[str]:
    """Documents an earlier run removed from docs but was killed before its stats row counted them."""
    pending = read_pending_apply(ds)
    if pending is None:
        return set()
    run, ids = pending
    recorded = (scan(ds, "stages").filter((pl.col("source") == DATASET_SOURCE) & (pl.col("stage") == REJECT_STAGE)
                                          & (pl.col("build_id") == run)).select(pl.len()).collect().item())
    return set() if recorded else set(ids) - present_ids(ds, ids)


def resolve_duplicates(ds: DatasetPaths, cfg: DedupConfig, band_paths: list[str], run_id: str | None = None) -> DedupReport:
    """Candidate pairs of all bands -> optional exact check -> clusters -> keepers; applied to docs.

    With `run_id` (the id its stats row will carry), the documents it removes are written down
    first, so that a kill before that row leaves them counted by the next run (`report.removed`
    is then what one uninterrupted run would have said)."""
    manifest = read_manifest(ds)
    report = DedupReport(documents=manifest.documents, bands=manifest.params.bands, rows=manifest.params.rows)
    timer = time.perf_counter()
    pairs = read_pairs(band_paths)
    report.candidate_pairs = len(pairs)
    if cfg.verify_jaccard and len(pairs):

        def lookup(docs: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
            rows = store_rows(manifest, ds, docs, ["id", "source", "signature"])
            return rows.drop("signature"), from_lean_bytes(rows["signature"].to_arrow(), manifest.params.num_perm)

        versions = {entry["source"]: entry["docs_version"] for entry in manifest.shards.values()}
        keep = verify_pairs(ds, pairs, lookup, cfg.threshold, cfg.ngram, versions)
        report.false_positives = int((~keep).sum())
        pairs = pairs[keep]
    report.seconds["verify"] = time.perf_counter() - timer

    timer = time.perf_counter()
    members = clustered_docs(cluster_labels(pairs, manifest.documents))
    members = members.join(store_rows(manifest, ds, members["doc"].to_numpy(), ["id", "quality_score"]), on="doc")
    present = present_ids(ds, members["id"].to_list())
    members = members.with_columns(pl.col("id").is_in(list(present)).alias("present"))
    kept, removed = choose_keepers(members)
    report.seconds["cluster"] = time.perf_counter() - timer

    timer = time.perf_counter()
    carried = carried_removals(ds) if run_id is not None else set()
    if run_id is not None:
        write_pending_apply(ds, run_id, sorted(carried | set(removed["id"].to_list())))
    moved = move_to_rejects(ds, removed.to_arrow(), REJECT_STAGE, REJECT_REASON, clusters=kept.to_arrow())
    report.removed = moved + len(carried)
    report.clusters = kept.height
    report.seconds["apply"] = time.perf_counter() - timer
    return report


class MapSteps(Protocol):
    """How the two parallel steps run: `step(ds, item, **fixed)` for every item, results in item order.
    `thread_map` here; the near-dedup flow maps them as Prefect tasks (threads or a Dask cluster)."""

    def __call__(self, step: Callable[..., T], ds: DatasetPaths, items: list, **fixed) -> list[T]: ...


def thread_map(workers: int | None = None, progress: bool = True) -> MapSteps:
    """Steps on `workers` threads (default: the cores this process may use): the MinHash kernels
    release the GIL, and so do Polars and the Parquet and Delta reads around them."""

    def run(step: Callable[..., T], ds: DatasetPaths, items: list, **fixed) -> list[T]:
        with ThreadPoolExecutor(max_workers=workers or len(os.sched_getaffinity(0))) as pool:
            results = pool.map(lambda item: step(ds, item, **fixed), items)
            return list(tqdm(results, total=len(items), desc=f"dedup {step.__name__}", disable=not progress))

    return run


def dedup_dataset(
    ds: DatasetPaths, cfg: DedupConfig, progress: bool = True, workers: int | None = None,
    map_steps: MapSteps | None = None, run_id: str | None = None,
) -> DedupReport:
    """Remove near-duplicate documents from a dataset's docs table (see module doc). The one
    orchestration of the stage: steps on `workers` threads by default; the near-dedup flow passes
    its Prefect task mapper, and the `run_id` of its stats row (see resolve_duplicates)."""
    cfg = cfg.banded()
    map_steps = map_steps or thread_map(workers, progress)
    timer = time.perf_counter()
    manifest, pending = prepare_signatures(ds, cfg)
    results = map_steps(compute_shard_signatures, ds, pending, cfg=cfg)
    manifest = record_signatures(ds, manifest, results)
    signing = time.perf_counter() - timer

    # Bands are grouped after every shard is signed: the manifest fixes the document numbering.
    timer = time.perf_counter()
    band_paths = map_steps(group_band, ds, list(range(manifest.params.bands)))
    grouping = time.perf_counter() - timer

    report = resolve_duplicates(ds, cfg, band_paths, run_id)
    report.signed = sum(r.docs for r in results)
    report.shards_signed = len(results)
    report.seconds = {"signatures": signing, "candidates": grouping, **report.seconds}
    return report
