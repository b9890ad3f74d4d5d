"""An ablation's results for people and for Polars: the table, the verdict, results.parquet, the plot.

    OUT/results.parquet          one row per (variant, seed, scored_on): bits per byte and the budget
    OUT/curves.parquet           one row per (variant, seed, evaluation): tokens, val_bpb on the eval text
    OUT/validation_curves.png    mean curve per variant over seeds, the band from lowest to highest seed
    OUT/report.md                the table and the verdict

The verdict compares every variant with the best one on the eval text. A difference counts only
when the seeds' ranges do not overlap (every seed of one variant beat every seed of the other);
otherwise it says the difference is within the seed spread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

EVAL = "eval"
RESULTS_NAME = "results.parquet"
CURVES_NAME = "curves.parquet"
PLOT_NAME = "validation_curves.png"
REPORT_NAME = "report.md"


def summary(results: pl.DataFrame) -> pl.DataFrame:
    """Per (variant, scored_on): mean, sample standard deviation, min and max over seeds, seeds."""
    return results.group_by("variant", "scored_on", maintain_order=True).agg(
        pl.col("bpb").mean().alias("mean"),
        pl.col("bpb").std().alias("sd"),
        pl.col("bpb").min().alias("min"),
        pl.col("bpb").max().alias("max"),
        pl.len().alias("seeds"),
    )


def cell(row: dict) -> str:
    if row["seeds"] < 2:
        return f"{row['mean']:.4f}"
    return f"{row['mean']:.4f} ± {row['sd']:.4f} [{row['min']:.4f}–{row['max']:.4f}]"


def table(results: pl.DataFrame, variants: pl.DataFrame) -> pl.DataFrame:
    """One row per variant: its documents and budget, then bits per byte on each thing scored."""
    stats = summary(results)
    scored_on = [EVAL] + [s for s in stats["scored_on"].unique(maintain_order=True).to_list() if s != EVAL]
    rows = []
    for v in variants.iter_rows(named=True):
        row = {"variant": v["variant"], "filter": v["filter"], "docs": v["docs"],
               "train tokens": v["train_tokens"], "epochs": round(v["epochs"], 2)}
        for target in scored_on:
            found = stats.filter((pl.col("variant") == v["variant"]) & (pl.col("scored_on") == target))
            row[f"bpb {target}"] = cell(found.row(0, named=True)) if found.height else ""
        rows.append(row)
    return pl.DataFrame(rows)


@dataclass(frozen=True)
class Comparison:
    better: str
    worse: str
    difference: float  # bits per byte, worse mean - better mean
    separated: bool | None  # None: one seed, no spread measured


def compare(results: pl.DataFrame, scored_on: str = EVAL) -> list[Comparison]:
    """Every variant against the best (lowest mean) one."""
    stats = summary(results).filter(pl.col("scored_on") == scored_on).sort("mean", "variant")
    if stats.height < 2:
        return []
    best = stats.row(0, named=True)
    out = []
    for other in stats.slice(1).iter_rows(named=True):
        separated = None if min(best["seeds"], other["seeds"]) < 2 else best["max"] < other["min"]
        out.append(Comparison(best["variant"], other["variant"], other["mean"] - best["mean"], separated))
    return out


def verdict(comparisons: list[Comparison], eval_name: str) -> list[str]:
    lines = []
    for c in comparisons:
        head = f"{c.better} beats {c.worse} on {eval_name} by {c.difference:.4f} bits/byte on average"
        if c.separated is None:
            lines.append(f"{head}, from one seed each: the seed spread is unknown, so this may be noise "
                         "(run --seeds 3 or more).")
        elif c.separated:
            lines.append(f"{head}, and every seed of {c.better} beat every seed of {c.worse}: "
                         "a difference beyond the seed spread at this scale.")
        else:
            lines.append(f"{head}, but that is within the seed spread (their seeds' ranges overlap): "
                         "no measurable difference at this scale.")
    return lines


def plot(curves: pl.DataFrame, path: Path, eval_name: str) -> None:
    """Mean validation curve per variant on the eval text, shaded from its lowest to highest seed."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for (variant,), points in curves.group_by("variant", maintain_order=True):
        by_tokens = points.group_by("tokens").agg(
            pl.col("val_bpb").mean().alias("mean"), pl.col("val_bpb").min().alias("lo"), pl.col("val_bpb").max().alias("hi")
        ).sort("tokens")
        x = by_tokens["tokens"].to_numpy()
        line, = ax.plot(x, by_tokens["mean"].to_numpy(), label=variant, linewidth=1.6)
        ax.fill_between(x, by_tokens["lo"].to_numpy(), by_tokens["hi"].to_numpy(), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("training tokens")
    ax.set_ylabel(f"bits per byte on {eval_name}")
    ax.set_title("validation curves (mean over seeds; band: lowest to highest seed)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(frame: pl.DataFrame) -> str:
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "|".join("---" if frame[c].dtype == pl.String else "---:" for c in frame.columns) + "|"
    body = ["| " + " | ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([head, rule, *body])
