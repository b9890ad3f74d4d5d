"""Writing a dataset: each input's output committed so that a crash loses nothing and duplicates nothing.

Delta Lake commits one table at a time, so the output of a group of inputs is committed in a fixed
order — docs, rejects, stages, then one row per input in `stats/shards` — and that last append is
the commit marker of every input in it. A re-run skips inputs that have a marker; an input without
one may have left rows behind from a killed run, and `commit_shard` deletes those before it
appends, so the result is the same as one clean run.
"""

from __future__ import annotations

import time
import uuid
import fnmatch
import posixpath
from collections.abc import Iterable
from datetime import datetime, timezone

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from warehouse.layout import DatasetPaths
from warehouse.schema import BUILDS_SCHEMA, REJECTS_SCHEMA, SHARDS_SCHEMA, STAGES_SCHEMA, rejects_from_docs
from warehouse.storage import append_delta, find_delta, open_delta, scan_delta


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _in_predicate(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(_sql_str(v) for v in values)})"


def _table(path: str) -> DeltaTable | None:
    return find_delta(path)


def _append(path: str, data: pa.Table, schema: pa.Schema) -> None:
    # An empty append still creates the table on first use, so readers always find all tables.
    append_delta(path, data.cast(schema))


def committed_sources(ds: DatasetPaths) -> set[str]:
    """Input keys whose output is fully committed (they have a row in stats/shards)."""
    table = _table(ds.shards)
    if table is None:
        return set()
    return set(table.to_pyarrow_table(columns=["source"]).column("source").to_pylist())


def done_inputs(ds: DatasetPaths, keys: Iterable[str]) -> set[str]:
    """Which of these input keys are committed.

    An input has its own marker; but before inputs were files, a folder or glob of HTML pages was
    one input, marked by the folder or glob. A page under such a marker counts as committed when
    it has its row in docs or rejects (every page gives exactly one), so a page added to the
    folder later is new and one built then is never built twice.
    """
    keys = set(keys)
    markers = committed_sources(ds)
    done = markers & keys
    rest = keys - done
    folders = {parent for key in rest for parent in _parents(key)} & markers
    globs = [m for m in markers - keys if any(c in m for c in "*?[")]
    covered = [k for k in rest if any(p in folders for p in _parents(k)) or any(fnmatch.fnmatchcase(k, g) for g in globs)]
    return done | _sources_with_rows(ds, covered) if covered else done


def _parents(key: str) -> list[str]:
    parents = []
    while (parent := posixpath.dirname(key)) not in (key, ""):
        parents.append(parent)
        key = parent
    return parents


def _sources_with_rows(ds: DatasetPaths, sources: list[str]) -> set[str]:
    found: set[str] = set()
    for path in (ds.docs, ds.rejects):
        if _table(path) is not None:
            rows = scan_delta(path).select("source").filter(pl.col("source").is_in(sources)).unique().collect()
            found.update(rows["source"].to_list())
    return found


def sources_with_reasons(ds: DatasetPaths, sources: Iterable[str], reasons: Iterable[str]) -> set[str]:
    """Which of these sources have a reject with one of these reasons."""
    sources = list(sources)
    if not sources or _table(ds.rejects) is None:
        return set()
    rows = (scan_delta(ds.rejects).filter(pl.col("source").is_in(sources) & pl.col("reason").is_in(list(reasons)))
            .select("source").unique().collect())
    return set(rows["source"].to_list())


def remove_partial(ds: DatasetPaths, paths: Iterable[str]) -> None:
    """Delete rows a killed run left for these inputs (they have no commit marker), or an earlier
    commit of an input read again (`--retry-failed`): its marker first, so a kill in between leaves
    it to be built again."""
    paths = list(paths)
    if not paths:
        return
    for path in (ds.shards, ds.docs, ds.rejects, ds.filtered, ds.stages):
        table = _table(path)
        if table is not None:
            table.delete(_in_predicate("source", paths))


def commit_shard(
    ds: DatasetPaths,
    keys: Iterable[str],
    docs: pa.Table,
    rejects: pa.Table,
    stages: pa.Table,
    shard: pa.Table,
    docs_schema: pa.Schema,
    filtered: pa.Table | None = None,
) -> None:
    """Commit some inputs' output: docs, rejects, filtered (when kept), stages, then their marker
    rows (see module doc). Rows are keyed by `source`, the input's key (a file's own path, or an
    `hf:` dataset)."""
    remove_partial(ds, keys)
    _append(ds.docs, docs, docs_schema)
    _append(ds.rejects, rejects, REJECTS_SCHEMA)
    if filtered is not None:
        _append(ds.filtered, filtered, filtered.schema)
    _append(ds.stages, stages, STAGES_SCHEMA)
    _append(ds.shards, shard, SHARDS_SCHEMA)


def record_build(ds: DatasetPaths, row: dict) -> None:
    _append(ds.builds, pa.Table.from_pylist([row], schema=BUILDS_SCHEMA), BUILDS_SCHEMA)


def stage_row(source: str, build_id: str, stage: str, records_in: int, dropped: int, seconds: float = 0.0) -> pa.Table:
    """One `stats/stages` row: records in, out and dropped by a stage, and its seconds."""
    return pa.Table.from_pylist(
        [{"source": source, "build_id": build_id, "stage": stage, "records_in": records_in,
          "records_out": records_in - dropped, "dropped": dropped, "seconds": seconds}],
        schema=STAGES_SCHEMA,
    )


def record_stage(ds: DatasetPaths, row: pa.Table) -> None:
    """Append stats rows for dataset-wide work; input-level rows are committed with their shard."""
    _append(ds.stages, row, STAGES_SCHEMA)


def new_build_id() -> str:
    """Sortable and unique: the start time, then a random suffix for runs started the same second."""
    return time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def table_version(path: str) -> int | None:
    table = _table(path)
    return None if table is None else table.version()


def move_to_rejects(ds: DatasetPaths, removed: pa.Table, stage: str, reason: str,
                    clusters: pa.Table | None = None) -> int:
    """Move documents out of `docs` into `rejects`; `removed` has columns id, detail. `clusters`
    (id, dup_cluster) sets `dup_cluster` on the documents kept, in the same docs transaction.

    Readers of docs see all of it or none of it: the deletes and the cluster ids are one merge.
    Idempotent, so a dedup pass killed half-way and run again converges: rejects are merged on
    (id, stage), never appended twice, and the docs merge comes last.
    Returns the number of documents moved.
    """
    ids = pa.schema([pa.field("id", pa.string()), pa.field("dup_cluster", pa.string())])
    changes = [] if clusters is None else [clusters.select(["id", "dup_cluster"]).cast(ids)]
    rows = pa.table({"id": pa.array([], pa.string())})
    if removed.num_rows:
        rows = (
            scan_delta(ds.docs)
            .filter(pl.col("id").is_in(removed.column("id").to_pylist()))
            .select("id", "url", "source", "source_offset", "text")
            .collect()
            .to_arrow()
        )
        detail = dict(zip(removed.column("id").to_pylist(), removed.column("detail").to_pylist()))
        rejected = rejects_from_docs(rows, stage, reason, [detail[i] for i in rows.column("id").to_pylist()])
        (
            open_delta(ds.rejects)
            .merge(rejected, "t.id = s.id AND t.stage = s.stage", source_alias="s", target_alias="t")
            .when_not_matched_insert_all()
            .execute()
        )
        changes.append(pa.table({"id": removed.column("id"), "dup_cluster": pa.nulls(removed.num_rows, pa.string())},
                                schema=ids))
    if sum(t.num_rows for t in changes):
        # A merge, not `delete(id IN (...))`: a corpus-scale list of ids does not fit a SQL predicate.
        (
            open_delta(ds.docs)
            .merge(pa.concat_tables(changes), "t.id = s.id", source_alias="s", target_alias="t")
            .when_matched_delete(predicate="s.dup_cluster IS NULL")
            .when_matched_update({"dup_cluster": "s.dup_cluster"}, predicate="s.dup_cluster IS NOT NULL")
            .execute()
        )
    return rows.num_rows


def now() -> datetime:
    return datetime.now(timezone.utc)
