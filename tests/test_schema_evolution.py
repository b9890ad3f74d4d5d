"""A dataset begun by an earlier release stays usable: today's build appends to a docs table that
lacks the columns the code has since gained (the PII counts), and every reader takes the older
rows with those columns null."""

from __future__ import annotations

import shutil

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.build_steps import group_tables, unit_tables
from pipeline import pii
from pipeline.config import BuildConfig, DedupConfig
from pipeline.dedup import dedup_dataset
from pipeline.exact_dedup import ExactDeduplicator
from pipeline.process import DOCS_SCHEMA, DocumentPipeline
from pipeline.readers import expand_inputs
from tests.small_dataset import build_from_texts, wikitext_paragraphs
from tokenizer.cli import tokenize_dataset
from warehouse import commit, stats
from warehouse.export import export_dataset
from warehouse.layout import DatasetPaths
from warehouse.read import iter_doc_batches, open_table, scan
from warehouse.storage import SchemaMismatch, append_delta, open_delta

# The docs table as the release before PII redaction wrote it.
OLD_SCHEMA = pa.schema([f for f in DOCS_SCHEMA if f.name not in pii.COLUMNS])


def build_old(ds: DatasetPaths, root, texts: list[str]) -> None:
    """Today's pipeline, committed through the warehouse's writer with the older docs schema."""
    source = root / "old-input.jsonl"
    source.write_text("".join(pl.DataFrame({"url": [f"https://old.example/{i}" for i in range(len(texts))],
                                            "text": texts}).write_ndjson()), encoding="utf-8")
    (unit,) = expand_inputs([str(source)])
    out = DocumentPipeline(BuildConfig(workers=1)).process_unit(unit)
    tables = group_tables([(out, unit_tables(out, "old-build"))], ExactDeduplicator.for_dataset(ds), "old-build")
    commit.commit_shard(ds, [unit.key], tables["docs"].select(OLD_SCHEMA.names), tables["rejects"],
                        tables["stages"], tables["shard"], OLD_SCHEMA)


@pytest.fixture(scope="module")
def upgraded(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("wh")
    ds = DatasetPaths(str(root), "d")
    old_texts = wikitext_paragraphs(shared_data, 12)
    build_old(ds, root, old_texts)
    old = scan(ds).collect()
    assert old.height >= 8 and not set(pii.COLUMNS) & set(old.columns)
    old_version = open_table(ds, "docs").version()
    # Today's build appends to it: this raised SchemaMismatchError (44 vs 42 fields) before.
    new_texts = wikitext_paragraphs(shared_data, 12, skip=12)
    new_texts[0] += " Write to someone@example.org for the data."
    new_texts[1] = old_texts[0] + " So it goes."  # a near duplicate across the two releases' files
    build_from_texts(root, "d", [(f"https://new.example/{i}", t) for i, t in enumerate(new_texts)])
    return ds, old, old_version


@pytest.mark.shared
def test_a_build_appends_to_an_older_docs_table_in_one_commit(upgraded):
    ds, old, old_version = upgraded
    docs = scan(ds).collect()
    assert set(pii.COLUMNS) <= set(docs.columns)
    is_old = pl.col("url").str.starts_with("https://old.")
    assert docs.filter(is_old).height == old.height
    assert docs.filter(is_old)["q_pii_emails"].null_count() == old.height  # older rows: null, not 0
    new = docs.filter(~is_old)
    assert new.height >= 8 and new["q_pii_emails"].null_count() == 0 and new["q_pii_emails"].sum() == 1
    # The new columns arrived with the rows, in the docs append itself: one version, no half step.
    assert open_table(ds, "docs").version() == old_version + 1
    assert set(pii.COLUMNS).isdisjoint(scan(ds, version=old_version).collect().columns)


@pytest.mark.shared
def test_readers_take_the_older_files_with_the_new_columns_null(upgraded, tmp_path):
    ds, old, _ = upgraded
    total = scan(ds).select(pl.len()).collect().item()
    columns = scan(ds).collect_schema().names()
    batches = list(iter_doc_batches(ds, columns))
    assert all(b.schema.names == columns for b in batches)
    read = pa.Table.from_batches(batches)
    assert read.num_rows == total and read.column("q_pii_emails").null_count == old.height

    assert stats.funnel(ds).height and stats.quality(ds).height
    assert stats.redactions(ds)["documents"].to_list() == [1, 0]  # e-mails in one new document
    report = export_dataset(ds, "parquet", tmp_path / "pq", progress=False)
    exported = pq.read_table(sorted((tmp_path / "pq").glob("*.parquet")))
    assert report.documents == exported.num_rows == total
    assert exported.column("q_pii_emails").null_count == old.height
    tokens = tokenize_dataset(f"{ds.root}/{ds.name}", tmp_path / "tok", vocab_size=512, workers=1, progress=False)
    assert tokens.meta["train_docs"] + tokens.meta["val_docs"] == total
    # Near dedup deletes from docs: on a copy, so the other tests see the dataset as built.
    copy = DatasetPaths(str(tmp_path), ds.name)
    shutil.copytree(f"{ds.root}/{ds.name}", f"{copy.root}/{copy.name}")
    assert dedup_dataset(copy, DedupConfig(), progress=False, workers=1).removed == 1
    after = scan(copy).collect()
    assert after.height == total - 1 and after["q_pii_emails"].null_count() in (old.height, old.height - 1)


def test_an_append_that_would_drop_a_required_column_is_refused_with_the_table_named(tmp_path):
    path = str(tmp_path / "t")
    append_delta(path, pa.table({"id": pa.array(["a"])}, schema=pa.schema([pa.field("id", pa.string(), nullable=False)])))
    with pytest.raises(SchemaMismatch, match=f"{path}.*id"):
        append_delta(path, pa.table({"other": pa.array(["b"])}))
    assert open_delta(path).to_pyarrow_dataset().count_rows() == 1
