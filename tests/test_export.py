"""Export of a dataset version: a Hugging Face dataset `load_from_disk` reads, gzipped JSONL and
Parquet shards of a chosen size, lineage beside them; atomic (a failed export leaves no OUT)."""

from __future__ import annotations

import gzip
import json

import polars as pl
import pytest

from tests.small_dataset import build_from_texts, wikitext_paragraphs
from warehouse import export
from warehouse.export import ExportError, export_dataset
from warehouse.read import scan


@pytest.fixture(scope="module")
def wiki(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("wh")
    paragraphs = wikitext_paragraphs(shared_data, 40)
    ds, build_id = build_from_texts(root, "wiki", [(f"https://en.wikipedia.org/wiki/P{i}", p) for i, p in enumerate(paragraphs)])
    docs = scan(ds).collect()
    assert docs.height >= 30  # real paragraphs: nearly all pass the quality rules
    return ds, build_id, docs


def _lineage(out) -> dict:
    return json.loads((out / "lineage.json").read_text())


@pytest.mark.shared
def test_hf_export_loads_with_datasets_load_from_disk(wiki, tmp_path):
    import datasets

    ds, build_id, docs = wiki
    report = export_dataset(ds, "hf", tmp_path / "hf", progress=False)
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert loaded.num_rows == docs.height == report.documents
    assert sorted(loaded["text"]) == sorted(docs["text"].to_list())
    assert set(loaded.column_names) == set(docs.columns)
    lineage = _lineage(tmp_path / "hf")
    assert lineage["docs_version"] == report.docs_version
    assert lineage["dataset"]["name"] == "wiki" and lineage["format"] == "hf"
    assert [b["build_id"] for b in lineage["builds"]] == [build_id]
    assert lineage["builds"][0]["config"]["quality"]["fineweb"]["line_punct_after_closing"] is True


@pytest.mark.shared
def test_jsonl_export_is_gzipped_shards_of_the_chosen_size(wiki, tmp_path):
    ds, _, docs = wiki
    shard_bytes = 20_000
    report = export_dataset(ds, "jsonl", tmp_path / "j", shard_bytes=shard_bytes, progress=False)
    files = sorted((tmp_path / "j").glob("part-*.jsonl.gz"))
    assert len(files) == len(report.files) >= 1
    rows = [json.loads(line) for f in files for line in gzip.open(f, "rt", encoding="utf-8")]
    assert len(rows) == docs.height
    assert {r["id"] for r in rows} == set(docs["id"])
    assert all(r["url"].startswith("https://en.wikipedia.org/wiki/") for r in rows)
    assert [f["rows"] for f in _lineage(tmp_path / "j")["files"]] == [
        sum(1 for _ in gzip.open(f, "rt")) for f in files]


@pytest.mark.shared
def test_parquet_export_splits_into_shards_and_reads_back_equal(wiki, tmp_path, monkeypatch):
    ds, _, docs = wiki
    from warehouse import read

    original = read.iter_doc_batches
    monkeypatch.setattr(export, "iter_doc_batches", lambda *a, **k: original(*a, **{**k, "batch_size": 4}))
    text_bytes = docs["text"].str.len_bytes().sum()
    report = export_dataset(ds, "parquet", tmp_path / "p", shard_bytes=text_bytes // 3, progress=False)
    assert 3 <= len(report.files) <= 5
    back = pl.read_parquet(tmp_path / "p" / "*.parquet")
    assert back.sort("id").equals(docs.sort("id"))


@pytest.mark.shared
def test_an_older_version_exports_what_it_held(wiki, tmp_path):
    ds, _, docs = wiki
    from deltalake import DeltaTable

    version = DeltaTable(ds.docs).version()
    first_id = docs["id"][0]
    DeltaTable(ds.docs).delete(f"id = '{first_id}'")
    try:
        report = export_dataset(ds, "parquet", tmp_path / "old", version=version, progress=False)
        assert report.docs_version == version and report.documents == docs.height
        current = export_dataset(ds, "parquet", tmp_path / "new", progress=False)
        assert current.documents == docs.height - 1
    finally:
        DeltaTable(ds.docs).restore(version)


@pytest.mark.shared
def test_an_existing_out_is_refused_and_a_failed_export_leaves_nothing(wiki, tmp_path, monkeypatch):
    ds, _, _ = wiki
    (tmp_path / "taken").mkdir()
    with pytest.raises(ExportError, match="already exists"):
        export_dataset(ds, "jsonl", tmp_path / "taken", progress=False)

    def broken(*args, **kwargs):
        yield from ()
        raise OSError("disk full")

    monkeypatch.setattr(export, "iter_doc_batches", broken)
    with pytest.raises(OSError, match="disk full"):
        export_dataset(ds, "parquet", tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == [tmp_path / "taken"]


@pytest.mark.shared
def test_the_export_command_writes_parquet_and_says_where(wiki, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    ds, _, docs = wiki
    result = CliRunner().invoke(app, ["export", ds.base, "--format", "parquet", "--out", str(tmp_path / "x"), "--shard-mb", "0.02"])
    assert result.exit_code == 0, result.output
    assert f"{docs.height:,} documents" in result.output
    assert pl.read_parquet(tmp_path / "x" / "*.parquet").height == docs.height
    assert len(list((tmp_path / "x").glob("*.parquet"))) > 1

    bad = CliRunner().invoke(app, ["export", ds.base, "--format", "csv", "--out", str(tmp_path / "y")])
    assert bad.exit_code == 2 and "unknown export format 'csv'" in bad.output
    missing = CliRunner().invoke(app, ["export", ds.base, "--format", "jsonl", "--out", str(tmp_path / "z"), "--version", "999"])
    assert missing.exit_code == 2 and "999" in missing.output, missing.output
    assert not (tmp_path / "z").exists()
