"""Arrow schemas of the warehouse tables. Every write passes one of these explicitly.

Types are the ones Delta Lake can store (no unsigned integers), so the same tables read back
unchanged in Polars, DuckDB and Spark.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("us", tz="UTC")

# Document columns before the quality signals (q_*) and after them; see ARCHITECTURE.md.
DOC_HEAD = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("source", pa.string(), nullable=False),
    pa.field("source_offset", pa.int64(), nullable=False),
    pa.field("fetched_at", TIMESTAMP),
    pa.field("title", pa.string()),
    pa.field("published_at", TIMESTAMP),  # the page's own date (meta tags, JSON-LD, URL), when it has one
    pa.field("text", pa.string(), nullable=False),
    pa.field("lang", pa.string()),
    pa.field("lang_score", pa.float32()),
    pa.field("n_chars", pa.int32()),
    pa.field("n_words", pa.int32()),
]
DOC_TAIL = [
    pa.field("quality_score", pa.float32()),
    pa.field("dup_cluster", pa.string()),
    # xxh64 of the normalised text (as a signed int64: Delta has no unsigned types); exact dedup key.
    pa.field("text_hash", pa.int64()),
]


def docs_schema(q_columns: list[str]) -> pa.Schema:
    """The docs table's schema: fixed columns, then one float32 column per quality signal."""
    return pa.schema(DOC_HEAD + [pa.field(c, pa.float32()) for c in q_columns] + DOC_TAIL)


def filtered_schema(q_columns: list[str]) -> pa.Schema:
    """The `filtered` table (opt-in: `[quality] keep_rejected_text`): the full docs row of each
    document a quality rule or the classifier rejected, then the stage and reason that rejected it."""
    return pa.schema([*docs_schema(q_columns), pa.field("stage", pa.string()), pa.field("reason", pa.string())])


REJECTS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("url", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_offset", pa.int64(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("excerpt", pa.string()),
    ]
)

# How much of a rejected record's text or HTML is kept in the rejects table, so a person can see
# why it was dropped without the table growing like the corpus.
EXCERPT_CHARS = 500


def rejects_from_docs(docs: pa.Table, stage: str, reason: str, details: list[str]) -> pa.Table:
    """Rejects rows for document rows a later stage drops (exact or near duplicates): the same id,
    url and source key, the start of the text as the excerpt, one detail per row."""
    return pa.table(
        {
            "id": docs.column("id"),
            "url": docs.column("url"),
            "source": docs.column("source"),
            "source_offset": docs.column("source_offset"),
            "stage": pa.array([stage] * docs.num_rows, pa.string()),
            "reason": pa.array([reason] * docs.num_rows, pa.string()),
            "detail": pa.array(details, pa.string()),
            "excerpt": pc.utf8_slice_codeunits(docs.column("text"), 0, EXCERPT_CHARS),
        },
        schema=REJECTS_SCHEMA,
    )


# One row per input unit (shard) committed. Its presence is the commit marker a re-run checks.
SHARDS_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("build_id", pa.string(), nullable=False),
        pa.field("records", pa.int64()),
        pa.field("docs", pa.int64()),
        pa.field("rejects", pa.int64()),
        pa.field("bytes_in", pa.int64()),
        pa.field("text_bytes", pa.int64()),
        pa.field("seconds", pa.float64()),
        pa.field("committed_at", TIMESTAMP),
    ]
)

# One row per (shard, stage): records in, out, dropped, and the time the stage took.
# The `source` of stats rows for work done on the whole dataset (near dedup), not on one input.
DATASET_SOURCE = "(dataset)"

STAGES_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("build_id", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("records_in", pa.int64()),
        pa.field("records_out", pa.int64()),
        pa.field("dropped", pa.int64()),
        pa.field("seconds", pa.float64()),
    ]
)

# One row per build: what a trained model's lineage points at.
BUILDS_SCHEMA = pa.schema(
    [
        pa.field("build_id", pa.string(), nullable=False),
        pa.field("started_at", TIMESTAMP),
        pa.field("finished_at", TIMESTAMP),
        pa.field("inputs", pa.int64()),
        pa.field("inputs_skipped", pa.int64()),
        pa.field("docs_version", pa.int64()),
        pa.field("rejects_version", pa.int64()),
        pa.field("config_json", pa.string()),
        pa.field("code_version", pa.string()),
    ]
)
