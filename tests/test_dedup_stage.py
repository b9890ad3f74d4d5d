"""The dataset-level stage on real near-duplicates: recall and precision against brute-force truth,
what lands in docs and rejects, and later builds deduplicated against earlier ones."""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from pipeline.config import DedupConfig
from pipeline.dedup import dedup_dataset
from bench.dedup_truth import (
    gutenberg_docs,
    near_copies,
    paragraph_chunks,
    score,
    similar_pairs,
    warc_pages,
)
from pipeline.dedup.store import read_manifest
from pipeline.records import document_id
from warehouse.layout import DatasetPaths
from warehouse.read import scan
from warehouse.schema import REJECTS_SCHEMA, docs_schema

pytestmark = pytest.mark.shared

GOV_UK = "warc/bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz"
GOV_UK_RECRAWL = "warc/bl-ukwa-2014_BL-20140325122341434_10resp_55revisit.warc.gz"


def corpus(shared_data: Path) -> list[tuple[str, str]]:
    """(source, text) of every test document: real twins, a recrawl, near-copies and unrelated prose."""
    books = [(name.split("#")[0], text) for name, text in gutenberg_docs(shared_data / "prose" / "gutenberg")]
    crawl = [("gov.uk", text) for _, text in warc_pages(shared_data / GOV_UK)]
    recrawl = [("gov.uk-recrawl", text) for _, text in warc_pages(shared_data / GOV_UK_RECRAWL)]
    prose = paragraph_chunks((shared_data / "prose" / "tinyshakespeare.txt").read_text(), 300)[:150]
    prose += paragraph_chunks((shared_data / "prose" / "wikitext2_valid.txt").read_text(), 300)[:100]
    copies = near_copies(prose, seed=1)
    return books + crawl + recrawl + [("prose", t) for t in prose] + [("prose-copies", t) for t in copies]


def write_dataset(ds: DatasetPaths, docs: list[tuple[str, str]], first_offset: int = 0) -> list[dict]:
    """Append documents to a docs table (creating it and an empty rejects table); returns the rows."""
    rng = random.Random(first_offset)
    rows = [
        {
            "id": document_id(source, first_offset + i),
            "source": source,
            "source_offset": first_offset + i,
            "text": text,
            "quality_score": round(rng.random(), 3),
        }
        for i, (source, text) in enumerate(docs)
    ]
    write_deltalake(ds.docs, pa.Table.from_pylist(rows, schema=docs_schema([])), mode="append")
    if first_offset == 0:
        write_deltalake(ds.rejects, REJECTS_SCHEMA.empty_table())
    return rows


@pytest.fixture(scope="module")
def deduped(shared_data, tmp_path_factory):
    """The test corpus as one dataset, deduplicated once: (dataset, rows, truth, report)."""
    ds = DatasetPaths(root=str(tmp_path_factory.mktemp("warehouse")), name="ds")
    docs = corpus(shared_data)
    rows = write_dataset(ds, docs)
    truth = similar_pairs([text for _, text in docs])
    report = dedup_dataset(ds, DedupConfig(), progress=False)
    return ds, rows, truth, report


def removed_indices(ds: DatasetPaths, rows: list[dict]) -> list[int]:
    position = {row["id"]: i for i, row in enumerate(rows)}
    rejects = scan(ds, "rejects").filter(pl.col("reason") == "near_duplicate").collect()
    return [position[i] for i in rejects["id"]]


def test_recall_and_precision_against_brute_force_jaccard(deduped):
    ds, rows, truth, _ = deduped
    result = score(truth, removed_indices(ds, rows), recall_at=0.85, precision_at=0.7)
    assert result.true_pairs > 150  # the corpus really holds near-duplicates of every kind
    assert result.recall >= 0.95
    assert result.precision >= 0.99


def test_every_real_twin_kind_is_found(deduped):
    ds, rows, truth, _ = deduped
    removed = set(removed_indices(ds, rows))
    for kinds in [("pg9198_complete-angler", "pg9198_complete-angler_OLD-EDITION_7tcng10"),
                  ("pg14263_katrine", "pg14263_katrine_LATIN1-VARIANT_14263-8"),
                  ("gov.uk", "gov.uk-recrawl"), ("prose", "prose-copies")]:
        pairs = [(a, b) for (a, b), j in truth.items()
                 if j >= 0.85 and {rows[a]["source"], rows[b]["source"]} == set(kinds)]
        assert pairs, kinds
        assert all(a in removed or b in removed for a, b in pairs), kinds


def test_removed_documents_are_in_rejects_with_the_kept_id_as_detail(deduped):
    ds, rows, truth, report = deduped
    rejects = scan(ds, "rejects").collect()
    docs = scan(ds).collect()
    assert report.removed == rejects.height > 0
    assert set(rejects["stage"]) == {"dedup"} and set(rejects["reason"]) == {"near_duplicate"}
    assert set(rejects["detail"]) <= set(docs["id"])  # every removed doc points at a kept one
    assert docs.height + rejects.height == len(rows)


def test_each_cluster_keeps_one_document_marked_with_its_own_id(deduped):
    ds, rows, truth, report = deduped
    docs = scan(ds).collect()
    kept = docs.filter(pl.col("dup_cluster").is_not_null())
    assert (kept["dup_cluster"] == kept["id"]).all()
    assert kept.height == report.clusters
    assert set(scan(ds, "rejects").collect()["detail"]) == set(kept["id"])


def test_kept_document_has_the_highest_quality_score_of_its_cluster(deduped):
    ds, rows, truth, _ = deduped
    score_of = {row["id"]: row["quality_score"] for row in rows}
    for removed_id, kept_id in scan(ds, "rejects").select("id", "detail").collect().rows():
        assert (score_of[kept_id], removed_id) > (score_of[removed_id], kept_id)


def test_second_run_signs_nothing_and_changes_nothing(deduped):
    ds, rows, truth, first = deduped
    before = scan(ds).collect().sort("id")
    again = dedup_dataset(ds, DedupConfig(), progress=False)
    assert again.signed == 0 and again.removed == 0
    assert again.clusters == first.clusters
    assert scan(ds).collect().sort("id").equals(before)


def test_later_build_signs_only_new_sources_and_dedups_against_removed_documents(shared_data, tmp_path):
    ds = DatasetPaths(root=str(tmp_path), name="ds")
    prose = paragraph_chunks((shared_data / "prose" / "tinyshakespeare.txt").read_text(), 300)[:40]
    copies = near_copies(prose, seed=2, edit_rates=(0.01,), boilerplate=(1,))
    first = write_dataset(ds, [("build1", t) for t in prose] + [("build1-copies", t) for t in copies])
    report = dedup_dataset(ds, DedupConfig(), progress=False)
    assert report.signed == 80 and report.removed == 40
    removed_first = set(scan(ds, "rejects").collect()["id"])

    # The second build brings copies of the first build's copies, half of which were removed.
    recopies = near_copies(copies, seed=3, edit_rates=(0.005,), boilerplate=(0,))
    second = write_dataset(ds, [("build2", t) for t in recopies], first_offset=len(first))
    report = dedup_dataset(ds, DedupConfig(), progress=False)
    assert report.shards_signed == 1 and report.signed == 40 and report.documents == 120
    assert read_manifest(ds).sources == {"build1", "build1-copies", "build2"}

    # Text i, its copy and its copy's copy form a family: exactly one of each must be left,
    # whichever build brought it, and even where the first build had removed the copy.
    rows = first + second
    truth = similar_pairs([row["text"] for row in rows])
    left = set(scan(ds).collect()["id"])
    families = [(i, 40 + i, 80 + i) for i in range(40)]
    close = [f for f in families if truth.get((f[0], f[1]), 0) >= 0.85 and truth.get((f[1], f[2]), 0) >= 0.9]
    assert len(close) >= 30
    assert all(sum(rows[d]["id"] in left for d in family) == 1 for family in close)
    assert any(rows[f[1]]["id"] in removed_first for f in close)


def test_new_threshold_rebands_stored_signatures_without_signing_again(deduped, tmp_path):
    ds, rows, truth, _ = deduped
    report = dedup_dataset(ds, DedupConfig(threshold=0.9), progress=False)
    assert report.signed == 0
    assert (report.bands, report.rows) != (14, 9)
    assert read_manifest(ds).params.bands == report.bands
