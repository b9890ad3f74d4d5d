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


def append_delta(path: str, data: pa.Table) -> None:
    write_deltalake(path, data, mode="append", storage_options=storage_options(path))


def scan_delta(path: str, version: int | None = None) -> pl.LazyFrame:
    return pl.scan_delta(path, version=version, storage_options=storage_options(path))
