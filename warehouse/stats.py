"""Summaries of a built dataset as Polars frames: what `tokenmill stats` prints, for notebooks too."""

from __future__ import annotations

import polars as pl

from warehouse.layout import DatasetPaths
from warehouse.read import DatasetNotFound, scan
from warehouse.schema import DATASET_SOURCE


def funnel(ds: DatasetPaths) -> pl.DataFrame:
    """Records in, kept, and dropped per (stage, reason). Kept + dropped always equals records in."""
    kept = scan(ds, "docs").select(pl.len()).collect().item()
    dropped = (
        scan(ds, "rejects").group_by("stage", "reason").agg(pl.len().alias("records"))
        # Ties broken by name: group_by's order is arbitrary, and two reads must print the same table.
        .sort(["records", "stage", "reason"], descending=[True, False, False]).collect()
    )
    total = kept + int(dropped["records"].sum())
    head = pl.DataFrame({"stage": ["(all)", "(kept)"], "reason": ["records in", "documents"],
                         "records": [total, kept]}, schema=dropped.schema)
    return pl.concat([head, dropped]).with_columns(
        (pl.col("records") / max(total, 1) * 100).round(2).alias("percent")
    )


def languages(ds: DatasetPaths, top: int = 15) -> pl.DataFrame:
    return (
        scan(ds, "docs").group_by("lang")
        .agg(pl.len().alias("docs"), pl.col("n_chars").sum().alias("chars"), pl.col("lang_score").mean().alias("mean_score"))
        .sort("docs", descending=True).head(top).collect()
    )


def quality(ds: DatasetPaths) -> pl.DataFrame:
    """Median, p10 and p90 of every numeric signal over the kept documents."""
    docs = scan(ds, "docs")
    columns = [c for c in docs.collect_schema().names() if c.startswith("q_") or c in ("n_words", "n_chars")]
    stats = docs.select(
        *[pl.col(c).cast(pl.Float64).quantile(q).alias(f"{c}|{name}") for c in columns
          for name, q in (("p10", 0.1), ("median", 0.5), ("p90", 0.9))]
    ).collect()
    rows = [{"signal": c, **{name: stats[f"{c}|{name}"][0] for name in ("p10", "median", "p90")}} for c in columns]
    return pl.DataFrame(rows)


def redactions(ds: DatasetPaths) -> pl.DataFrame:
    """E-mail and IP addresses the PII stage replaced in the kept documents, and in how many of them
    (no rows for a dataset built without the q_pii_* columns)."""
    docs = scan(ds, "docs")
    names = docs.collect_schema().names()
    kinds = [(kind, f"q_pii_{column}") for kind, column in (("e-mail addresses", "emails"), ("IP addresses", "ips"))]
    kinds = [(kind, column) for kind, column in kinds if column in names]
    if not kinds:
        return pl.DataFrame(schema={"redacted": pl.String, "replaced": pl.Int64, "documents": pl.Int64})
    totals = docs.select(
        *[pl.col(c).sum().cast(pl.Int64).alias(f"{c}|replaced") for _, c in kinds],
        *[(pl.col(c) > 0).sum().cast(pl.Int64).alias(f"{c}|documents") for _, c in kinds],
    ).collect()
    return pl.DataFrame([{"redacted": kind, "replaced": totals[f"{c}|replaced"][0], "documents": totals[f"{c}|documents"][0]}
                         for kind, c in kinds])


def shards(ds: DatasetPaths) -> pl.DataFrame:
    return scan(ds, "shards").sort("committed_at").collect()


def stages(ds: DatasetPaths) -> pl.DataFrame:
    """Records in, out and dropped, and seconds, per stage. Per-input stages sum over the inputs.
    A dataset-wide stage (near dedup) runs over the whole dataset at every build: its records in and
    out are those of its latest run, its dropped and seconds the sums over all runs."""
    rows = scan(ds, "stages")
    per_input = rows.filter(pl.col("source") != DATASET_SOURCE).group_by("stage").agg(
        pl.col("records_in").sum(), pl.col("records_out").sum(), pl.col("dropped").sum(), pl.col("seconds").sum()
    )
    dataset_wide = rows.filter(pl.col("source") == DATASET_SOURCE).sort("build_id").group_by("stage").agg(
        pl.col("records_in").last(), pl.col("records_out").last(), pl.col("dropped").sum(), pl.col("seconds").sum()
    )
    return pl.concat([per_input, dataset_wide]).sort("records_in", descending=True).collect()


def classifier_models(ds: DatasetPaths) -> list[str]:
    """The classifier models the dataset's builds were configured with (none: no classifier ever)."""
    try:
        builds = scan(ds, "builds").select("config_json").collect()
    except DatasetNotFound:
        return []
    paths = builds.select(pl.col("config_json").str.json_path_match("$.quality.classifier.model_path")).to_series()
    return sorted(set(paths.drop_nulls().to_list()))


def quality_scores(ds: DatasetPaths, bins: int = 10) -> pl.DataFrame | None:
    """How the kept documents' `quality_score` (the classifier's p(positive)) is distributed: documents
    per score range, and how many have no score. None when no build of the dataset had a classifier,
    so a null column is never read as scores."""
    if not classifier_models(ds):
        return None
    scores = scan(ds, "docs").select("quality_score").collect()["quality_score"]
    scored = scores.drop_nulls()
    bin_of = (scored * bins).floor().clip(0, bins - 1).cast(pl.Int32)
    counts = bin_of.value_counts().rename({"quality_score": "bin"})
    frame = pl.DataFrame({"bin": pl.Series(range(bins), dtype=pl.Int32)}).join(counts, on="bin", how="left")
    frame = frame.select(
        pl.format("{} – {}", (pl.col("bin") / bins).round(2), ((pl.col("bin") + 1) / bins).round(2)).alias("quality_score"),
        pl.col("count").fill_null(0).cast(pl.Int64).alias("docs"),
    )
    unscored = scores.null_count()
    if unscored:
        frame = pl.concat([frame, pl.DataFrame({"quality_score": ["(no score: built without a classifier)"],
                                                "docs": [unscored]}, schema=frame.schema)])
    return frame.with_columns((pl.col("docs") / max(len(scores), 1) * 100).round(2).alias("percent"))
