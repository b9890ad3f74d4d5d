"""A dataset version out of the warehouse, for other tools: Hugging Face dataset, JSONL or Parquet shards.

    export_dataset(ds, "hf" | "jsonl" | "parquet", out, version=None, shard_bytes=...)

- `parquet`: `part-00000.parquet`, ... each holding about `shard_bytes` of uncompressed Arrow data;
- `jsonl`: `part-00000.jsonl.gz`, ... gzipped JSON lines, a new shard after `shard_bytes` of Arrow data;
- `hf`: a folder `datasets.load_from_disk` reads (its Arrow shards `shard_bytes` at most).

Beside the data, `lineage.json` says where it came from: the dataset, its docs table version, the
builds that made that version (ids, config, code version), the files with their row counts.

Streaming: documents are read file by file from the Delta table (`iter_doc_batches`) and written
batch by batch, so memory does not grow with the dataset; the Hugging Face form is made from the
Parquet shards by `datasets`, which writes its Arrow files batch by batch too. Atomic: everything
is written to a hidden temporary folder beside OUT and renamed to OUT at the end, so OUT either
does not exist or is complete. OUT is a local folder (a rename is not atomic on object stores).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake.exceptions import DeltaError
from tqdm import tqdm

from warehouse.commit import now
from warehouse.errors import UsageError
from warehouse.layout import DatasetPaths
from warehouse.lineage import git_commit
from warehouse.read import iter_doc_batches, open_table, scan

Format = Literal["hf", "jsonl", "parquet"]
FORMATS: tuple[str, ...] = ("hf", "jsonl", "parquet")
DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
LINEAGE_FILE = "lineage.json"


class ExportError(UsageError):
    """An export that cannot start (OUT exists, unknown format or version); one line."""


@dataclass
class ExportReport:
    out: str
    format: str
    docs_version: int
    documents: int = 0
    files: list[dict] = field(default_factory=list)  # name, rows (per data file)


def _builds_of(ds: DatasetPaths, version: int) -> list[dict]:
    """The builds whose docs version is at most `version`: those that made it (oldest first)."""
    try:
        builds = scan(ds, "builds").filter(pl.col("docs_version") <= version).sort("started_at").collect()
    except FileNotFoundError:
        return []
    return [
        {"build_id": row["build_id"], "docs_version": row["docs_version"], "code_version": row["code_version"],
         "finished_at": row["finished_at"].isoformat() if row["finished_at"] else None,
         "config": json.loads(row["config_json"]) if row["config_json"] else None}
        for row in builds.iter_rows(named=True)
    ]


def _shards(batches: Iterator[pa.RecordBatch], shard_bytes: int) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(shard number, rows): a new shard starts once the current one holds `shard_bytes` of Arrow
    data; a batch larger than the room left is cut (by its mean row size), so shards stay near
    the size asked for whatever the Delta files' batch size."""
    shard, size = 0, 0
    for batch in batches:
        row_bytes = max(batch.nbytes // max(batch.num_rows, 1), 1)
        start = 0
        while start < batch.num_rows:
            if size and size + row_bytes > shard_bytes:
                shard, size = shard + 1, 0
            rows = max((shard_bytes - size) // row_bytes, 1)
            piece = batch.slice(start, rows)
            start += piece.num_rows
            size += piece.num_rows * row_bytes
            yield shard, piece


def _write_parquet(batches: Iterator[pa.RecordBatch], folder: Path, shard_bytes: int, schema: pa.Schema) -> list[dict]:
    files: list[dict] = []
    writer: pq.ParquetWriter | None = None
    for shard, batch in _shards(batches, shard_bytes):
        if shard == len(files):
            if writer is not None:
                writer.close()
            name = f"part-{shard:05d}.parquet"
            writer = pq.ParquetWriter(folder / name, schema, compression="zstd")
            files.append({"name": name, "rows": 0})
        writer.write_batch(batch.cast(schema))
        files[-1]["rows"] += batch.num_rows
    if writer is not None:
        writer.close()
    return files


def _write_jsonl(batches: Iterator[pa.RecordBatch], folder: Path, shard_bytes: int, schema: pa.Schema) -> list[dict]:
    files: list[dict] = []
    handle = None
    for shard, batch in _shards(batches, shard_bytes):
        if shard == len(files):
            if handle is not None:
                handle.close()
            name = f"part-{shard:05d}.jsonl.gz"
            handle = gzip.open(folder / name, "wb", compresslevel=6)
            files.append({"name": name, "rows": 0})
        # Polars writes timestamps as ISO 8601 strings and nulls as null.
        pl.from_arrow(pa.Table.from_batches([batch.cast(schema)])).write_ndjson(handle)
        files[-1]["rows"] += batch.num_rows
    if handle is not None:
        handle.close()
    return files


def _write_hf(batches: Iterator[pa.RecordBatch], folder: Path, shard_bytes: int, schema: pa.Schema) -> list[dict]:
    import datasets

    # Parquet shards first (streamed), then `datasets` turns them into its Arrow files batch by batch.
    staging = folder.with_name(folder.name + "-staging")
    staging.mkdir()
    try:
        parts = _write_parquet(batches, staging, shard_bytes, schema)
        if parts:
            files = [str(staging / part["name"]) for part in parts]
            dataset = datasets.Dataset.from_parquet(files, cache_dir=str(staging / "cache"), keep_in_memory=False)
        else:  # an empty version still exports, as an empty dataset with the columns
            dataset = datasets.Dataset.from_dict({name: [] for name in schema.names},
                                                  features=datasets.Features.from_arrow_schema(schema))
        dataset.save_to_disk(str(folder), max_shard_size=shard_bytes)
        del dataset
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    state = json.loads((folder / "state.json").read_text())
    return [{"name": entry["filename"], "rows": _arrow_rows(folder / entry["filename"])} for entry in state["_data_files"]]


def _arrow_rows(path: Path) -> int:
    with pa.memory_map(str(path)) as source:
        return sum(batch.num_rows for batch in pa.ipc.open_stream(source))


_WRITERS = {"parquet": _write_parquet, "jsonl": _write_jsonl, "hf": _write_hf}


def export_dataset(
    ds: DatasetPaths,
    fmt: Format,
    out: str | Path,
    version: int | None = None,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    progress: bool = True,
) -> ExportReport:
    """Write docs version `version` (default: the current one) of `ds` to the new folder `out`
    (`datasets.load_from_disk(out)` for the Hugging Face form); `out/lineage.json` describes it."""
    if fmt not in _WRITERS:
        raise ExportError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    if shard_bytes <= 0:
        raise ExportError(f"shard size must be positive, got {shard_bytes}")
    out = Path(out)
    if out.exists():
        raise ExportError(f"{out} already exists; export writes a new folder")
    latest = open_table(ds, "docs").version()
    if version is not None and not 0 <= version <= latest:
        raise ExportError(f"{ds.docs} has no version {version}; its versions are 0 to {latest}")
    try:
        table = open_table(ds, "docs", version)
    except DeltaError as exc:  # e.g. an old version whose log was cleaned up
        raise ExportError(f"{ds.docs}: cannot open version {version}: {exc}") from None
    version = table.version()
    schema = scan(ds, "docs", version).head(0).collect().to_arrow().schema
    rows = table.to_pyarrow_dataset().count_rows()
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    temp.mkdir()
    try:
        bar = tqdm(total=rows, desc=f"export {fmt}", unit="doc", disable=not progress)
        batches = iter_doc_batches(ds, schema.names, version)

        def counted() -> Iterator[pa.RecordBatch]:
            for batch in batches:
                bar.update(batch.num_rows)
                yield batch

        files = _WRITERS[fmt](counted(), temp, shard_bytes, schema)
        bar.close()
        report = ExportReport(str(out), fmt, version, sum(f["rows"] for f in files), files)
        lineage = {
            "dataset": {"root": ds.root, "name": ds.name},
            "docs_version": version,
            "builds": _builds_of(ds, version),
            "format": fmt,
            "documents": report.documents,
            "files": files,
            "columns": schema.names,
            "exported_at": now().isoformat(),
            "code_version": git_commit(short=True),
        }
        (temp / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2) + "\n", encoding="utf-8")
        os.rename(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return report


__all__ = ["ExportError", "ExportReport", "FORMATS", "export_dataset"]
