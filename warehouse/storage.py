"""Where a warehouse lives: a local folder or an object store URL (s3://bucket/prefix, gs://, az://).

Credentials and endpoints come from the environment only — for S3 and S3-compatible servers
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and AWS_ENDPOINT_URL — which s3fs (fsspec),
deltalake and Polars each read themselves. The one option derived here: delta-rs and Polars refuse
a plain-http endpoint (MinIO on a LAN, a test server) unless told, where s3fs takes it as given.
Every Delta table is opened or written through this module, so each gets the same options.
"""

from __future__ import annotations

import os

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from warehouse.errors import TokenmillError


def storage_options(path: str) -> dict[str, str] | None:
    """Options for deltalake and Polars on `path`; None (their defaults) unless one is needed."""
    if not path.startswith(("s3://", "s3a://")):
        return None
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    return {"allow_http": "true"} if endpoint.startswith("http://") else None


def open_delta(path: str, version: int | None = None) -> DeltaTable:
    """The Delta table at `path`; raises deltalake's TableNotFoundError where there is none."""
    return DeltaTable(path, version=version, storage_options=storage_options(path))


def find_delta(path: str) -> DeltaTable | None:
    """The Delta table at `path`, or None where there is none yet."""
    try:
        return open_delta(path)
    except TableNotFoundError:
        return None


class SchemaMismatch(TokenmillError, ValueError):
    """Rows that cannot join a table without changing it in a way readers cannot follow."""


def append_delta(path: str, data: pa.Table) -> None:
    """Append `data` as one Delta commit, creating the table on first use.

    A table written by an earlier release may lack columns the code has since gained (or have one
    it has since dropped). Such an append evolves the schema in the same commit (delta-rs
    `schema_mode="merge"`): the new columns are added, nullable, and older files read them as null;
    a column the rows lack is null in them. So a dataset is never stuck at the release that began
    it, and the commit stays one atomic step. Only nullable columns may differ: a required column
    cannot be null in the rows that lack it.
    """
    table = find_delta(path)
    if table is None:
        write_deltalake(path, data, mode="append", storage_options=storage_options(path))
        return
    have = {field.name: field.nullable for field in table.schema().fields}
    added = [field for field in data.schema if field.name not in have]
    dropped = [name for name in have if name not in data.schema.names]
    required = [field.name for field in added if not field.nullable] + [name for name in dropped if not have[name]]
    if required:
        raise SchemaMismatch(f"{path}: cannot append rows whose required columns differ from the table's: "
                             f"{', '.join(required)}")
    write_deltalake(table, data, mode="append", schema_mode="merge" if added or dropped else None)


def scan_delta(path: str, version: int | None = None) -> pl.LazyFrame:
    return pl.scan_delta(path, version=version, storage_options=storage_options(path))
