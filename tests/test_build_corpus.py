"""The build-corpus flow end to end, on real crawl files: every record lands exactly once,
broken files never fail the run, re-runs change nothing, and a killed build resumes cleanly."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from warcio.archiveiterator import ArchiveIterator

from flows.build_corpus import build_corpus
from flows.build_steps import run_build
from pipeline.config import BuildConfig
from warehouse import commit
from warehouse.layout import DatasetPaths
from warehouse.read import scan
from warehouse.schema import DATASET_SOURCE

DOCUMENT_RECORDS = {"response", "revisit", "conversion"}
REPO = Path(__file__).resolve().parent.parent


def count_document_records(path: Path) -> int:
    """An independent count, with warcio, of the records that must end in docs or rejects."""
    with open(path, "rb") as stream:
        return sum(1 for record in ArchiveIterator(stream) if record.rec_type in DOCUMENT_RECORDS)


def keyed_rows(ds: DatasetPaths) -> pl.DataFrame:
    docs = scan(ds, "docs").select("source", "source_offset", pl.lit("docs").alias("table"))
    rejects = scan(ds, "rejects").select("source", "source_offset", pl.lit("rejects").alias("table"))
    return pl.concat([docs, rejects]).collect()


@pytest.fixture(scope="module")
def warc_build(shared_data, tmp_path_factory):
    """The shared WARCs (and WET) built once, on two worker processes."""
    root = tmp_path_factory.mktemp("warehouse")
    warcs = sorted((shared_data / "warc").glob("*.warc.gz")) + sorted((shared_data / "warc").glob("*.wet.gz"))
    summary = build_corpus([str(p) for p in warcs], warehouse=str(root), dataset="warc",
                           config=BuildConfig(workers=2), progress=False)
    return DatasetPaths(str(root), "warc"), warcs, summary


@pytest.mark.shared
def test_every_document_record_of_every_shared_warc_lands_exactly_once(warc_build):
    ds, warcs, _ = warc_build
    rows = keyed_rows(ds)
    assert rows.select("source", "source_offset").is_duplicated().sum() == 0
    for path in warcs:
        landed = rows.filter(pl.col("source") == str(path)).height
        assert landed == count_document_records(path), path.name


@pytest.mark.shared
def test_revisits_of_the_gov_uk_recrawl_are_rejected_as_exact_duplicates(warc_build):
    ds, _, _ = warc_build
    revisits = scan(ds, "rejects").filter(
        pl.col("source").str.ends_with("10resp_55revisit.warc.gz") & (pl.col("reason") == "exact_duplicate")
    ).collect()
    assert revisits.height >= 55


@pytest.mark.shared
def test_kept_documents_are_english_clean_text_with_quality_signals(warc_build):
    ds, _, _ = warc_build
    docs = scan(ds).collect()
    assert docs.height > 10
    assert set(docs["lang"]) == {"en"}
    assert docs["text"].str.contains("<div").sum() == 0
    assert docs["q_gopher_n_words"].min() >= 50


@pytest.mark.shared
def test_a_rerun_of_a_finished_build_changes_nothing(warc_build):
    ds, warcs, summary = warc_build
    before = keyed_rows(ds).sort("source", "source_offset")
    again = build_corpus([str(p) for p in warcs], warehouse=ds.root, dataset=ds.name, progress=False)
    assert again.inputs_skipped == len(warcs)
    assert again.docs_version == summary.docs_version
    assert keyed_rows(ds).sort("source", "source_offset").equals(before)


@pytest.mark.shared
def test_all_malformed_archives_are_processed_without_failing_the_run(shared_data, tmp_path):
    files = sorted(p for p in (shared_data / "warc_malformed").iterdir() if p.name != "SOURCE.md")
    assert len(files) == 18
    summary = build_corpus([str(p) for p in files], warehouse=str(tmp_path), dataset="bad",
                           config=BuildConfig(workers=2), progress=False)
    ds = DatasetPaths(str(tmp_path), "bad")
    assert commit.committed_sources(ds) == {str(p) for p in files}
    assert summary.inputs == 18
    reasons = set(scan(ds, "rejects").select("reason").collect()["reason"])
    assert {"read_error", "truncated_record"} <= reasons


def test_the_bundled_sample_builds_and_its_counts_add_up(tmp_path):
    sample = REPO / "sample"
    summary = build_corpus([str(sample / "warc"), str(sample / "html")], warehouse=str(tmp_path),
                           dataset="sample", progress=False)
    ds = DatasetPaths(str(tmp_path), "sample")
    shards = scan(ds, "shards").collect()
    assert shards["records"].sum() == shards["docs"].sum() + shards["rejects"].sum()
    assert shards["docs"].sum() == scan(ds).select(pl.len()).collect().item() + summary.near_dedup.removed
    langs = scan(ds, "rejects").filter(pl.col("stage") == "langid").collect()
    assert "an.wikipedia.org" in " ".join(langs["url"].drop_nulls())  # the Aragonese page
    # Near dedup, which works on the whole dataset, leaves its own stats row under this build's id.
    (dedup,) = scan(ds, "stages").filter(pl.col("stage") == "dedup").collect().iter_rows(named=True)
    assert (dedup["source"], dedup["build_id"]) == (DATASET_SOURCE, summary.build_id)
    assert dedup["dropped"] == summary.near_dedup.removed
    assert dedup["records_out"] == scan(ds).select(pl.len()).collect().item() == dedup["records_in"] - dedup["dropped"]
    assert dedup["seconds"] > 0
    # The build records the LSH bands it used (derived from the threshold), as the report says.
    (config_json,) = scan(ds, "builds").select("config_json").collect()["config_json"]
    recorded = BuildConfig.model_validate_json(config_json).dedup
    assert (recorded.bands, recorded.rows) == (summary.near_dedup.bands, summary.near_dedup.rows) == (14, 9)


def test_a_killed_build_resumes_without_losing_or_duplicating(tmp_path):
    sample = REPO / "sample" / "warc"
    inputs = [str(sample / "bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz"),
              str(sample / "bl-ukwa-2014_BL-20140325122341434_10resp_55revisit.warc.gz")]
    ds = DatasetPaths(str(tmp_path), "k")
    cfg = BuildConfig(workers=1)
    build_corpus(inputs, warehouse=ds.root, dataset="k", config=cfg, progress=False)
    complete = keyed_rows(ds).sort("source", "source_offset")

    # Kill simulated after the second input's docs were appended but before its commit marker.
    shutil.rmtree(tmp_path / "k")
    build_corpus(inputs[:1], warehouse=ds.root, dataset="k", config=cfg, progress=False)
    from flows.build_steps import group_tables, run_units, unit_tables
    from pipeline.exact_dedup import ExactDeduplicator
    from pipeline.readers import expand_inputs

    out = next(run_units(expand_inputs(inputs[1:]), cfg, workers=1))
    tables = group_tables([(out, unit_tables(out, "killed"))], ExactDeduplicator.for_dataset(ds), "killed")
    commit._append(ds.docs, tables["docs"], tables["docs"].schema)
    commit._append(ds.rejects, tables["rejects"], tables["rejects"].schema)

    build_corpus(inputs, warehouse=ds.root, dataset="k", config=cfg, progress=False)
    assert keyed_rows(ds).sort("source", "source_offset").equals(complete)


@pytest.mark.shared
def test_without_prefect_the_same_steps_build_the_same_dataset(warc_build, tmp_path):
    """`tokenmill build` with no Prefect API runs `run_build`'s plain steps: same rows, same fates."""
    flow_ds, warcs, flow_summary = warc_build
    ds = DatasetPaths(str(tmp_path), "warc")
    summary = run_build([str(p) for p in warcs], ds, BuildConfig(workers=2), progress=False)

    def fates(ds: DatasetPaths) -> pl.DataFrame:
        docs = scan(ds, "docs").select("id", "text", pl.lit("kept").alias("reason"))
        rejects = scan(ds, "rejects").select("id", pl.lit(None, pl.String).alias("text"), "reason")
        return pl.concat([docs, rejects]).collect().sort("id")

    assert fates(ds).equals(fates(flow_ds))
    assert summary.near_dedup.removed == flow_summary.near_dedup.removed
    stages = scan(ds, "stages").filter(pl.col("stage") == "dedup").collect()
    assert stages["build_id"].to_list() == [summary.build_id]
