"""Reading a dataset back: Polars frames for people, Arrow batches for the stages downstream."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from warehouse.layout import DatasetPaths

TABLES = ("docs", "rejects", "shards", "stages", "builds")


class DatasetNotFound(FileNotFoundError):
    pass


def table_path(ds: DatasetPaths, table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; one of {', '.join(TABLES)}")
    return getattr(ds, table)


def open_table(ds: DatasetPaths, table: str, version: int | None = None) -> DeltaTable:
    path = table_path(ds, table)
    try:
        return DeltaTable(path, version=version)
    except TableNotFoundError:
        raise DatasetNotFound(f"no {table} table at {path}: has this dataset been built?") from None


def scan(ds: DatasetPaths, table: str = "docs", version: int | None = None) -> pl.LazyFrame:
    """A lazy Polars frame over one table (any version), e.g. `scan(ds).group_by("lang").len()`."""
    open_table(ds, table, version)  # a clear error for a missing table; polars' own is an OS error
    return pl.scan_delta(table_path(ds, table), version=version)


def docs_version(ds: DatasetPaths) -> int:
    """The current version of the docs table: what a tokenizer or model's lineage records."""
    return open_table(ds, "docs").version()


def iter_doc_batches(
    ds: DatasetPaths,
    columns: list[str] | tuple[str, ...] = ("id", "text"),
    version: int | None = None,
    batch_size: int = 1024,
) -> Iterator[pa.RecordBatch]:
    """Stream documents in a deterministic order (file by file, as committed), never all in memory."""
    dataset = open_table(ds, "docs", version).to_pyarrow_dataset()
    yield from dataset.to_batches(columns=list(columns), batch_size=batch_size)
