"""What a run shows in the Prefect UI: a build's funnel and data card, a training run's result.

Artifacts are keyed by dataset, so the UI's Artifacts page keeps each dataset's history. Outside
a Prefect run (a flow's `.fn` called directly) nothing is published.
"""

from __future__ import annotations

import re

import polars as pl
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.run_logger import in_prefect_run
from warehouse import stats
from warehouse.layout import DatasetPaths


def artifact_key(*parts: str) -> str:
    """Prefect's artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def markdown_table(frame: pl.DataFrame) -> str:
    with pl.Config(tbl_formatting="MARKDOWN", tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True,
                   tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=80, thousands_separator=True, float_precision=3):
        return str(frame)


def data_card(ds: DatasetPaths, build_id: str, inputs: int, skipped: int, docs_version: int | None) -> str:
    funnel = stats.funnel(ds)
    records_in, kept = funnel["records"][0], funnel["records"][1]
    return "\n\n".join([
        f"# Dataset `{ds.name}`",
        f"Warehouse `{ds.root}`, docs version **{docs_version}**, build `{build_id}`: {inputs} inputs "
        f"({skipped} already committed). **{kept:,}** documents kept of **{records_in:,}** records "
        f"({kept / max(records_in, 1):.1%}).",
        "## Stages", markdown_table(stats.stages(ds)),
        "## Languages", markdown_table(stats.languages(ds)),
        "## Quality signals of kept documents", markdown_table(stats.quality(ds)),
        f"Query it with Polars: `pl.scan_delta(\"{ds.docs}\")`; every dropped record is in "
        f"`{ds.rejects}` with its stage and reason.",
    ])


def publish_build(ds: DatasetPaths, build_id: str, inputs: int, skipped: int, docs_version: int | None) -> None:
    if not in_prefect_run() or docs_version is None:
        return
    create_table_artifact(stats.funnel(ds).to_dicts(), key=artifact_key(ds.name, "funnel"),
                          description=f"build {build_id}: records in, kept, dropped per stage and reason")
    create_markdown_artifact(data_card(ds, build_id, inputs, skipped, docs_version),
                             key=artifact_key(ds.name, "data-card"), description=f"build {build_id}")


def training_card(dataset: str, run, metrics: pl.DataFrame) -> str:
    """The run's result and its loss curve summarised: the evaluation rows (at most 20 of them)."""
    evals = metrics.drop_nulls("val_loss").select("step", "tokens", "elapsed_s", "train_loss", "val_loss", "val_bpb")
    if evals.height > 20:
        evals = evals.gather_every(-(-evals.height // 20))
    bpb = f"{run.val_bpb:.4f}" if run.val_bpb is not None else "n/a"
    return "\n\n".join([
        f"# Training run `{run.run_dir.name}`",
        f"Dataset `{dataset}`: {run.steps:,} steps, {run.tokens:,} tokens in {run.elapsed_s:.0f} s "
        f"({run.tokens_per_s:,.0f} tokens/s), stopped by {run.stopped_by}.",
        f"Final validation: **{bpb} bits per byte**"
        + (f" ({run.val_loss:.4f} nats/token)" if run.val_loss is not None else "") + ".",
        "## Loss curve (evaluations)", markdown_table(evals),
        f"Every logged step is in `{run.run_dir / 'metrics.parquet'}`.",
    ])


def publish_training(dataset: str, run, metrics: pl.DataFrame) -> None:
    if in_prefect_run():
        name = dataset.rstrip("/").rpartition("/")[2]
        create_markdown_artifact(training_card(dataset, run, metrics), key=artifact_key(name, "training"),
                                 description=f"run {run.run_dir.name}")
