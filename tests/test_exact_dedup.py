"""Exact dedup against the committed docs table: first in commit order wins, across inputs and
builds, and no index of the dataset's hashes is ever held in memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pyarrow as pa

from pipeline.exact_dedup import ExactDeduplicator
from warehouse import commit
from warehouse.layout import DatasetPaths
from warehouse.schema import REJECTS_SCHEMA, SHARDS_SCHEMA, STAGES_SCHEMA, docs_schema

SCHEMA = docs_schema([])


def docs(source: str, hashes: list[int]) -> pa.Table:
    return pa.Table.from_pylist(
        [{"id": f"{source}#{i}", "source": source, "source_offset": i, "text": f"text {h}", "text_hash": h}
         for i, h in enumerate(hashes)],
        schema=SCHEMA,
    )


def commit_docs(ds: DatasetPaths, table: pa.Table) -> None:
    source = table.column("source")[0].as_py()
    commit.commit_shard(ds, [source], table, REJECTS_SCHEMA.empty_table(), STAGES_SCHEMA.empty_table(),
                        pa.Table.from_pylist([{"source": source, "build_id": "b"}], schema=SHARDS_SCHEMA), SCHEMA)


def split_and_commit(dedup: ExactDeduplicator, ds: DatasetPaths, table: pa.Table) -> pa.Table:
    kept, rejects, new = dedup.split(table)
    dedup.remember(new)
    commit_docs(ds, kept)
    dedup.committed()
    return rejects


def test_the_first_in_commit_order_wins_within_an_input_across_inputs_and_across_builds(tmp_path):
    ds = DatasetPaths(str(tmp_path), "d")
    dedup = ExactDeduplicator.for_dataset(ds)
    rejects = split_and_commit(dedup, ds, docs("a", [10, 11, 10]))
    assert rejects.select(["id", "reason", "detail"]).to_pylist() == [
        {"id": "a#2", "reason": "exact_duplicate", "detail": "a#0"}]

    rejects = split_and_commit(dedup, ds, docs("b", [12, 11, 12]))
    assert {r["id"]: r["detail"] for r in rejects.to_pylist()} == {"b#1": "a#1", "b#2": "b#0"}

    later_build = ExactDeduplicator.for_dataset(ds)
    kept, rejects, _ = later_build.split(docs("c", [12, 13, 10]))
    assert kept.column("id").to_pylist() == ["c#1"]
    assert {r["id"]: r["detail"] for r in rejects.to_pylist()} == {"c#0": "b#0", "c#2": "a#0"}


def test_documents_a_killed_run_left_in_the_table_are_kept_when_their_input_is_committed_again(tmp_path):
    ds = DatasetPaths(str(tmp_path), "d")
    commit._append(ds.docs, docs("a", [1, 2]), SCHEMA)  # docs appended, no commit marker
    kept, rejects, _ = ExactDeduplicator.for_dataset(ds).split(docs("a", [1, 2, 1]))
    assert kept.column("id").to_pylist() == ["a#0", "a#1"]
    assert rejects.column("detail").to_pylist() == ["a#0"]


def test_documents_split_but_not_yet_committed_count_until_they_are(tmp_path):
    ds = DatasetPaths(str(tmp_path), "d")
    dedup = ExactDeduplicator.for_dataset(ds)
    kept, _, new = dedup.split(docs("a", [5]))
    dedup.remember(new)  # a commit grouped with the next input's, still to come
    _, rejects, _ = dedup.split(docs("b", [5]))
    assert rejects.column("detail").to_pylist() == ["a#0"]
    commit_docs(ds, kept)
    dedup.committed()
    assert dedup.pending.is_empty()
    _, rejects, _ = dedup.split(docs("b", [5]))
    assert rejects.column("detail").to_pylist() == ["a#0"]


def test_the_committed_hashes_are_read_at_each_split_not_held_in_memory(tmp_path):
    ds = DatasetPaths(str(tmp_path), "d")
    n = 200_000
    hashes = np.random.default_rng(0).integers(-(2**62), 2**62, n)
    columns = {"id": pa.array([f"big#{i}" for i in range(n)]), "source": pa.array(["big"] * n),
               "source_offset": pa.array(np.arange(n)), "text": pa.array(["x"] * n), "text_hash": pa.array(hashes)}
    big = pa.table([columns.get(f.name, pa.nulls(n, f.type)) for f in SCHEMA], schema=SCHEMA)
    commit._append(ds.docs, big, SCHEMA)

    tracemalloc.start()
    try:
        dedup = ExactDeduplicator.for_dataset(ds)
        kept, rejects, _ = dedup.split(docs("new", [int(hashes[7]), 42, int(hashes[n - 1])]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kept.column("id").to_pylist() == ["new#1"]
    assert rejects.column("detail").to_pylist() == ["big#7", f"big#{n - 1}"]
    # A dict of 200,000 hashes and ids costs about 30 MB of Python objects; the join keeps only matches.
    assert peak < 5_000_000, peak

    # A document committed after the deduplicator was made is found: nothing was read up front.
    commit._append(ds.docs, docs("late", [42]), SCHEMA)
    _, rejects, _ = dedup.split(docs("new", [int(hashes[7]), 42]))
    assert rejects.column("detail").to_pylist() == ["big#7", "late#0"]


def test_a_recommitted_document_remembered_before_its_commit_is_not_counted_twice(tmp_path):
    ds = DatasetPaths(str(tmp_path), "d")
    commit._append(ds.docs, docs("a", [1]), SCHEMA)  # a killed run's row
    dedup = ExactDeduplicator.for_dataset(ds)
    kept, _, new = dedup.split(docs("a", [1]))
    dedup.remember(new)
    kept, rejects, _ = dedup.split(docs("b", [1, 2]))
    assert kept.column("id").to_pylist() == ["b#1"]
    assert rejects.column("detail").to_pylist() == ["a#0"]


def test_a_commit_group_is_split_as_its_inputs_would_be_one_after_another(tmp_path):
    """The build splits each commit group's documents at once (one read of the committed hashes):
    the same documents kept, the same copies rejected with the same `first`, the same exact_dedup
    stage and shard rows per input, as splitting and committing input after input."""
    from flows.build_steps import group_tables, unit_tables
    from pipeline.process import UnitOutput
    from pipeline.readers.inputs import InputUnit

    def output(source: str, hashes: list[int]) -> UnitOutput:
        unit = InputUnit(key=source, format="jsonl", paths=(source,), size_bytes=1)
        return UnitOutput(unit, docs=docs(source, hashes).to_pylist())

    committed = docs("old", [7, 8])
    group = [output("a", [1, 2, 1, 7]), output("b", [3, 2, 9]), output("c", [1, 3, 4, 8, 4])]

    def tables_of(ds: DatasetPaths, groups: list[list[UnitOutput]]) -> dict[str, list[dict]]:
        commit_docs(ds, committed)
        dedup = ExactDeduplicator.for_dataset(ds)
        rows: dict[str, list[dict]] = {"docs": [], "rejects": [], "stages": [], "shard": []}
        for outs in groups:
            tables = group_tables([(out, unit_tables(out, "b1")) for out in outs], dedup, "b1")
            commit_docs(ds, tables["docs"].select(SCHEMA.names).cast(SCHEMA))
            dedup.committed()
            rows["docs"] += tables["docs"].select(["id"]).to_pylist()
            rows["rejects"] += tables["rejects"].select(["id", "stage", "reason", "detail"]).to_pylist()
            rows["stages"] += tables["stages"].select(["source", "stage", "records_in", "dropped"]).to_pylist()
            rows["shard"] += tables["shard"].select(["source", "records", "docs", "rejects"]).to_pylist()
        return rows

    grouped = tables_of(DatasetPaths(str(tmp_path), "grouped"), [group])
    one_by_one = tables_of(DatasetPaths(str(tmp_path), "one_by_one"), [[out] for out in group])
    assert grouped == one_by_one
    assert [r["id"] for r in grouped["docs"]] == ["a#0", "a#1", "b#0", "b#2", "c#2"]
    assert {r["id"]: r["detail"] for r in grouped["rejects"]} == {
        "a#2": "a#0", "a#3": "old#0", "b#1": "a#1", "c#0": "a#0", "c#1": "b#0", "c#3": "old#1", "c#4": "c#2"}
    assert [r["docs"] for r in grouped["shard"]] == [2, 2, 1]
