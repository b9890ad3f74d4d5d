"""One execution path, local or cluster: the same build with each input a `process-input` task on a
2-worker Dask LocalCluster gives the same dataset as the flow's default runner (Prefect's thread pool)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from flows.build_corpus import build_corpus
from pipeline.config import BuildConfig
from warehouse.layout import DatasetPaths
from warehouse.read import scan

REPO = Path(__file__).resolve().parent.parent
WARCS = [REPO / "sample" / "warc" / name for name in
         ("bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz", "bl-ukwa-2014_BL-20140325122341434_10resp_55revisit.warc.gz")]


def dataset_rows(ds: DatasetPaths) -> dict[str, pl.DataFrame]:
    key = ["source", "source_offset"]
    return {
        "docs": scan(ds).select(*key, "id", "text", "text_hash", "dup_cluster").sort(key).collect(),
        "rejects": scan(ds, "rejects").select(*key, "id", "stage", "reason", "detail").sort(key + ["stage"]).collect(),
        "shards": scan(ds, "shards").select("source", "records", "docs", "rejects").sort("source").collect(),
    }


@pytest.mark.slow
def test_a_build_on_a_two_worker_local_cluster_equals_the_local_build(tmp_path):
    pytest.importorskip("prefect_dask")
    inputs = [str(p) for p in WARCS]
    cfg = BuildConfig(workers=2)
    local = build_corpus(inputs, warehouse=str(tmp_path), dataset="local", config=cfg, progress=False)
    on_dask = build_corpus(inputs, warehouse=str(tmp_path), dataset="dask", config=cfg, progress=False, runner="dask")
    assert on_dask.failed == [] and on_dask.inputs == local.inputs == 2
    local_rows, dask_rows = dataset_rows(DatasetPaths(str(tmp_path), "local")), dataset_rows(DatasetPaths(str(tmp_path), "dask"))
    assert dask_rows["docs"].height > 0
    assert (dask_rows["rejects"]["reason"] == "exact_duplicate").sum() >= 55  # exact dedup in input order
    for table in local_rows:
        assert dask_rows[table].equals(local_rows[table]), table
