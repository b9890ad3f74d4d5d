"""The exact Jaccard check reads a removed document's text from the docs version it was signed from;
only a version that is gone falls back to the MinHash estimate, and any other failure is raised."""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from pipeline.dedup import verify
from warehouse.layout import DatasetPaths

TEXT = "the removed document's text, read back from the version it was signed from"


@pytest.fixture
def removed(tmp_path) -> DatasetPaths:
    """Version 0 holds document a; version 1 no longer does (as after near-dedup moved it out)."""
    ds = DatasetPaths(str(tmp_path), "ds")
    write_deltalake(ds.docs, pa.table({"id": ["a"], "source": ["s"], "text": [TEXT]}))
    write_deltalake(ds.docs, pa.table({"id": ["b"], "source": ["s"], "text": ["another"]}), mode="overwrite")
    return ds


ROWS = pl.DataFrame({"id": ["a"], "source": ["s"]})


def test_a_removed_document_is_read_from_its_signed_version(removed):
    assert verify._texts(removed, ROWS, {"s": 0}) == {"a": TEXT}


def test_a_vacuumed_version_leaves_the_pair_to_the_estimate(removed):
    DeltaTable(removed.docs).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    assert verify._texts(removed, ROWS, {"s": 0}) == {}
    assert verify._texts(removed, ROWS, {"s": 7}) == {}  # a version whose log is gone


def test_any_other_failure_is_raised_not_taken_for_a_vacuumed_version(removed, monkeypatch):
    real = verify._read_texts

    def broken(ds, sources, ids, version):
        if version is not None:
            raise TypeError("a bug")
        return real(ds, sources, ids, version)

    monkeypatch.setattr(verify, "_read_texts", broken)
    with pytest.raises(TypeError, match="a bug"):
        verify._texts(removed, ROWS, {"s": 0})
