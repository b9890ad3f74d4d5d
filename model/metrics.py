"""Training metrics: RUN/metrics.parquet for analysis and a table on the console for people.

One row per logged step. Validation columns are null except on the steps where the model was
evaluated, so `pl.read_parquet(RUN / "metrics.parquet").drop_nulls("val_loss")` is the eval curve.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from rich.console import Console

METRICS_NAME = "metrics.parquet"

SCHEMA = {
    "step": pl.Int64,
    "tokens": pl.Int64,
    "elapsed_s": pl.Float64,
    "lr": pl.Float64,
    "train_loss": pl.Float64,
    "val_loss": pl.Float64,
    "val_bpb": pl.Float64,
    "tokens_per_s": pl.Float64,  # training throughput since the previous logged step (all ranks)
    "mfu": pl.Float64,  # that throughput's FLOP/s over the device's peak (per device)
}


@dataclass
class MetricsRow:
    step: int
    tokens: int
    elapsed_s: float
    lr: float
    train_loss: float | None = None
    val_loss: float | None = None
    val_bpb: float | None = None
    tokens_per_s: float | None = None
    mfu: float | None = None


class MetricsLog:
    """The rows of one run, in memory, rewritten to RUN/metrics.parquet on `write()`."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / METRICS_NAME
        self.rows: list[dict] = []

    def resume_from(self, step: int) -> None:
        """Load the rows written so far, dropping any after `step`: those came from the part of an
        interrupted run that ran past its last checkpoint, and the resumed run will redo them."""
        if self.path.is_file():
            frame = pl.read_parquet(self.path).filter(pl.col("step") <= step)
            self.rows = [dict.fromkeys(SCHEMA) | row for row in frame.to_dicts()]  # older runs lack columns

    def append(self, row: MetricsRow) -> None:
        last = self.rows[-1] if self.rows else None
        if last is not None and last["step"] == row.step:
            # The same step logged twice (a train row, then its evaluation): merge into one row.
            last.update({k: v for k, v in vars(row).items() if v is not None})
        else:
            self.rows.append(dict(vars(row)))

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows, schema=SCHEMA)

    def write(self) -> None:
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        self.frame().write_parquet(tmp)
        os.replace(tmp, self.path)


class ConsoleTable:
    """Aligned rows printed as training goes: a table whose header is printed once."""

    COLUMNS = (("step", 7), ("tokens", 11), ("time", 7), ("lr", 8), ("train loss", 10),
               ("val loss", 8), ("val bpb", 7), ("tok/s", 7), ("MFU", 4))

    def __init__(self, console: Console | None = None):
        self.console = console or Console()
        self.header_done = False

    def print_row(self, row: MetricsRow) -> None:
        if not self.header_done:
            self.console.print(" ".join(f"{name:>{width}}" for name, width in self.COLUMNS), style="bold", soft_wrap=True)
            self.header_done = True
        cells = (
            f"{row.step:,}",
            f"{row.tokens:,}",
            f"{row.elapsed_s:.1f}s",
            f"{row.lr:.2e}",
            "" if row.train_loss is None else f"{row.train_loss:.4f}",
            "" if row.val_loss is None else f"{row.val_loss:.4f}",
            "" if row.val_bpb is None else f"{row.val_bpb:.4f}",
            "" if row.tokens_per_s is None else f"{row.tokens_per_s:,.0f}",
            "" if row.mfu is None else f"{row.mfu:.0%}",
        )
        self.console.print(" ".join(f"{c:>{w}}" for c, (_, w) in zip(cells, self.COLUMNS)), highlight=False, soft_wrap=True)
