"""Candidate pairs: documents whose band keys agree, found one band at a time with Polars streaming.

For one band, every signature file contributes (doc, key); documents sharing a key form a bucket,
and each member of a bucket is paired with the bucket's smallest doc number (its root). A bucket
of m documents gives m - 1 pairs, not m(m - 1)/2: the union-find afterwards joins them all the
same, and a boilerplate page copied ten thousand times stays ten thousand pairs. The query runs on
Polars' streaming engine and writes straight to Parquet, so a band never needs the whole index in
memory; bands are independent, so they can run as separate tasks on separate workers.
"""

from __future__ import annotations

import fsspec
import numpy as np
import polars as pl

from pipeline.dedup.store import band_column, candidates_path, read_manifest
from warehouse.layout import DatasetPaths


def bucket_pairs(keys: pl.LazyFrame) -> pl.LazyFrame:
    """(doc, root) pairs of a lazy frame of (doc, key): root is the smallest doc sharing the key."""
    keys = keys.filter(pl.col("key").is_not_null())
    roots = keys.group_by("key").agg(pl.col("doc").min().alias("root"), pl.len().alias("size"))
    return (
        keys.join(roots.filter(pl.col("size") > 1), on="key")
        .filter(pl.col("doc") != pl.col("root"))
        .select("doc", "root")
    )


def group_band(ds: DatasetPaths, band: int) -> str:
    """Write the candidate pairs of one band over the whole signature store; returns the file's path.

    Needs the manifest written by the signature step of the same run (it fixes the doc numbering).
    """
    manifest = read_manifest(ds)
    if manifest is None:
        raise FileNotFoundError(f"no signature manifest under {ds.dedup}: compute signatures first")
    out = candidates_path(ds, band)
    _makedirs(out)
    paths = manifest.paths(ds)
    if not paths:
        pl.DataFrame(schema={"doc": pl.UInt32, "root": pl.UInt32}).write_parquet(out)
        return out
    keys = pl.scan_parquet(paths, row_index_name="doc").select(
        pl.col("doc").cast(pl.UInt32), pl.col(band_column(band)).alias("key")
    )
    bucket_pairs(keys).sink_parquet(out)
    return out


def read_pairs(paths: list[str]) -> np.ndarray:
    """All distinct candidate pairs of the given band files, as an (m, 2) uint32 array (doc, root)."""
    if not paths:
        return np.empty((0, 2), np.uint32)
    pairs = pl.scan_parquet(paths).unique().sort("root", "doc").collect(engine="streaming")
    return np.column_stack([pairs["doc"].to_numpy(), pairs["root"].to_numpy()]).astype(np.uint32)


def _makedirs(url: str) -> None:
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path.rpartition("/")[0], exist_ok=True)
