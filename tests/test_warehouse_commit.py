"""Atomic per-input commits: a killed run's leftovers never duplicate, moves into rejects converge."""

import polars as pl
import pyarrow as pa

from warehouse import commit
from warehouse.layout import DatasetPaths
from warehouse.read import scan
from warehouse.schema import REJECTS_SCHEMA, SHARDS_SCHEMA, STAGES_SCHEMA, docs_schema

SCHEMA = docs_schema([])


def docs(source: str, texts: list[str]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"id": f"{source}#{i}", "source": source, "source_offset": i, "text": t, "text_hash": i} for i, t in enumerate(texts)],
        schema=SCHEMA,
    )


def shard(source: str) -> pa.Table:
    return pa.Table.from_pylist([{"source": source, "build_id": "b"}], schema=SHARDS_SCHEMA)


def empty(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()


def commit_one(ds, source, texts):
    commit.commit_shard(ds, [source], docs(source, texts), empty(REJECTS_SCHEMA), empty(STAGES_SCHEMA), shard(source), SCHEMA)


def test_committed_input_has_a_marker(tmp_path):
    ds = DatasetPaths(str(tmp_path), "d")
    assert commit.committed_sources(ds) == set()
    commit_one(ds, "/in/a.warc", ["one", "two"])
    assert commit.committed_sources(ds) == {"/in/a.warc"}


def test_rows_left_by_a_killed_run_are_replaced_not_duplicated(tmp_path):
    ds = DatasetPaths(str(tmp_path), "d")
    # A run killed after appending docs but before the marker: rows without a commit marker.
    commit._append(ds.docs, docs("/in/a.warc", ["one", "two"]), SCHEMA)
    commit_one(ds, "/in/b.warc", ["three"])
    assert commit.committed_sources(ds) == {"/in/b.warc"}
    commit_one(ds, "/in/a.warc", ["one", "two"])
    counts = scan(ds).group_by("source").len().sort("source").collect()
    assert counts.rows() == [("/in/a.warc", 2), ("/in/b.warc", 1)]


def test_an_html_page_built_under_a_folder_marker_is_done_and_one_added_later_is_not(tmp_path):
    """Before inputs were files, a folder of HTML pages was one input marked by the folder's path."""
    ds = DatasetPaths(str(tmp_path), "d")
    commit._append(ds.docs, docs("/in/pages/a.html", ["kept"]), SCHEMA)
    commit._append(ds.rejects, pa.Table.from_pylist(
        [{"id": "r", "source": "/in/pages/sub/b.html", "source_offset": 0, "stage": "quality", "reason": "x"}],
        schema=REJECTS_SCHEMA), REJECTS_SCHEMA)
    commit._append(ds.shards, shard("/in/pages"), SHARDS_SCHEMA)
    commit._append(ds.shards, shard("/in/glob/*.htm"), SHARDS_SCHEMA)
    commit._append(ds.docs, docs("/in/glob/c.htm", ["kept"]), SCHEMA)
    keys = ["/in/pages/a.html", "/in/pages/sub/b.html", "/in/pages/new.html", "/in/glob/c.htm", "/in/glob/d.htm",
            "/in/pagesx/e.html"]
    assert commit.done_inputs(ds, keys) == {"/in/pages/a.html", "/in/pages/sub/b.html", "/in/glob/c.htm"}
    commit_one(ds, "/in/pages/new.html", ["new"])
    assert "/in/pages/new.html" in commit.done_inputs(ds, keys)


def test_move_to_rejects_is_idempotent(tmp_path):
    ds = DatasetPaths(str(tmp_path), "d")
    commit_one(ds, "/in/a.warc", ["one", "two", "three"])
    removed = pa.table({"id": ["/in/a.warc#1"], "detail": ["/in/a.warc#0"]})
    assert commit.move_to_rejects(ds, removed, "dedup", "near_duplicate") == 1
    # Run again, as a re-run after a kill would: nothing moves twice.
    commit.move_to_rejects(ds, removed, "dedup", "near_duplicate")
    assert scan(ds).select(pl.len()).collect().item() == 2
    rejects = scan(ds, "rejects").collect()
    assert rejects.select("id", "reason", "detail").rows() == [("/in/a.warc#1", "near_duplicate", "/in/a.warc#0")]


def test_removing_duplicates_and_marking_their_keepers_is_one_docs_version(tmp_path):
    ds = DatasetPaths(str(tmp_path), "d")
    commit_one(ds, "/in/a.warc", ["one", "two", "three"])
    before = commit.table_version(ds.docs)
    commit.move_to_rejects(ds, pa.table({"id": ["/in/a.warc#1"], "detail": ["/in/a.warc#0"]}), "dedup", "near_duplicate",
                           pa.table({"id": ["/in/a.warc#0"], "dup_cluster": ["/in/a.warc#0"]}))
    assert commit.table_version(ds.docs) == before + 1  # a reader sees the pass applied whole, or not at all
    got = dict(scan(ds).select("id", "dup_cluster").collect().rows())
    assert got == {"/in/a.warc#0": "/in/a.warc#0", "/in/a.warc#2": None}


def test_dup_cluster_is_set_on_named_documents_only(tmp_path):
    ds = DatasetPaths(str(tmp_path), "d")
    commit_one(ds, "/in/a.warc", ["one", "two"])
    commit.move_to_rejects(ds, pa.table({"id": pa.array([], pa.string()), "detail": pa.array([], pa.string())}),
                           "dedup", "near_duplicate", pa.table({"id": ["/in/a.warc#0"], "dup_cluster": ["/in/a.warc#0"]}))
    got = dict(scan(ds).select("id", "dup_cluster").collect().rows())
    assert got == {"/in/a.warc#0": "/in/a.warc#0", "/in/a.warc#1": None}


def test_stage_stats_sum_over_inputs_and_keep_the_latest_dataset_wide_run(tmp_path):
    from warehouse.schema import DATASET_SOURCE
    from warehouse.stats import stages

    ds = DatasetPaths(str(tmp_path), "d")
    for source, build, records_in, dropped in (("/in/a.warc", "20261125T100000-a", 100, 40), ("/in/b.warc", "20261125T110000-b", 50, 10)):
        commit.record_stage(ds, commit.stage_row(source, build, "quality", records_in, dropped, 1.0))
    # Near dedup runs over the whole dataset at each build: 60 documents, then 100.
    commit.record_stage(ds, commit.stage_row(DATASET_SOURCE, "20261125T100000-a", "dedup", 60, 5, 2.0))
    commit.record_stage(ds, commit.stage_row(DATASET_SOURCE, "20261125T110000-b", "dedup", 95, 3, 2.5))
    table = {row["stage"]: row for row in stages(ds).iter_rows(named=True)}
    assert table["quality"] == {"stage": "quality", "records_in": 150, "records_out": 100, "dropped": 50, "seconds": 2.0}
    assert table["dedup"] == {"stage": "dedup", "records_in": 95, "records_out": 92, "dropped": 8, "seconds": 4.5}
