"""The ablation's steps in order: prepare the data, fix the budget, train every run, report.

`run_ablation` runs them in this process; flows/ablate.py runs the same steps as a Prefect flow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ablation import report
from ablation.data import HELDOUT_NAME, split_docs, train_shared_tokenizer, write_tokens, write_variant
from ablation.runs import measure_tokens_per_second, train_and_score
from ablation.variants import Variant, VariantError, parse_variants, select
from model.config import TrainConfig
from model.plan import count_params
from tokenizer.codec import Codec
from warehouse.errors import MissingFileError
from warehouse.layout import DatasetPaths
from warehouse.read import docs_version

CALIBRATION_SECONDS = 8.0


class AblationSettings(BaseModel):
    """Every setting of an ablation; the proxy shape and optimiser are those of
    model/configs/tinyshakespeare_cpu.toml (chosen by measurement for one CPU core)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tokens: int | None = Field(None, gt=0)  # training tokens per model; exact, reproducible
    seconds: float | None = Field(None, gt=0)  # or: the tokens one model trains in this many seconds here
    seeds: int = Field(3, gt=0)
    first_seed: int = 0
    preset: str = "small"
    model: dict[str, Any] = {}
    vocab_size: int = Field(1024, ge=320)
    batch_size: int = Field(16, gt=0)
    lr: float = Field(3e-3, gt=0)
    threads: int = Field(1, gt=0)  # a fixed count keeps CPU runs bit-for-bit reproducible
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    val_fraction: float = Field(0.1, gt=0, lt=1)
    split_chars: int = Field(4000, gt=0)  # pieces of text split between training and validation
    eval_points: int = Field(10, gt=0)  # points on each validation curve
    curve_tokens: int = Field(16_384, gt=0)  # eval-text tokens scored per curve point
    score_tokens: int = Field(131_072, gt=0)  # tokens scored per final number
    tokenizer_sample_bytes: int = Field(20_000_000, gt=0)

    @model_validator(mode="after")
    def _one_budget(self) -> "AblationSettings":
        if (self.tokens is None) == (self.seconds is None):
            raise ValueError("give exactly one budget: tokens (exact) or seconds (measured here)")
        return self

    def train_config(self, seed: int, max_tokens: int) -> TrainConfig:
        base = TrainConfig(preset=self.preset, model=self.model, batch_size=self.batch_size)
        steps = max(1, max_tokens // (self.batch_size * base.block_size))
        return TrainConfig(
            preset=self.preset, model=self.model, batch_size=self.batch_size, lr=self.lr,
            warmup_steps=max(1, min(50, steps // 10)), seed=seed, num_threads=self.threads, device=self.device,
            eval_interval=max(1, steps // self.eval_points), eval_tokens=self.curve_tokens,
            log_interval=max(1, steps // 20), checkpoint_interval=10**9, sample_tokens=0,
            peak_flops=1e12,  # only labels MFU; a fixed value skips measuring the device at every start
        )


@dataclass
class Prepared:
    out: Path
    dataset: str
    docs_version: int
    variants: list[Variant]
    meta: dict[str, dict]
    eval_name: str
    settings: AblationSettings

    def variant_dir(self, name: str) -> Path:
        return self.out / "data" / name

    def score_on(self) -> dict[str, tuple[Path, int]]:
        """What each final model is scored on: the eval text and every variant's held-out split."""
        first = self.meta[self.variants[0].name]
        targets = {report.EVAL: (self.out / "eval.bin", first["val_bytes"])}
        for v in self.variants:
            targets[f"val:{v.name}"] = (self.variant_dir(v.name) / HELDOUT_NAME, self.meta[v.name]["heldout_bytes"])
        return targets


@dataclass
class AblationReport:
    out: Path
    tokens: int
    table: pl.DataFrame
    verdict: list[str]
    results: pl.DataFrame = field(repr=False)


def prepare(dataset: str, variant_specs: list[str], eval_file: str | Path, out: str | Path,
            settings: AblationSettings) -> Prepared:
    """Select each variant's documents, train the shared tokenizer, write every token file."""
    ds = DatasetPaths.parse(dataset)
    version = docs_version(ds)
    variants = parse_variants(variant_specs)
    eval_path = Path(eval_file)
    if not eval_path.is_file():
        raise MissingFileError(f"--eval {eval_path}: no such file")
    eval_text = eval_path.read_text(encoding="utf-8")
    frames = {v.name: select(ds, v, version) for v in variants}
    for v in variants:
        train, heldout = split_docs(frames[v.name], settings.val_fraction, settings.split_chars)
        if not train or not heldout:
            raise VariantError(f"variant {v.name} ({v.filter}) selects {frames[v.name].height} documents: "
                               "too little text for a training and a validation split")
    out = Path(out)
    sp = train_shared_tokenizer(frames.values(), settings.val_fraction, settings.split_chars, settings.vocab_size,
                                settings.tokenizer_sample_bytes, out)
    codec = Codec(sp)
    eval_size = write_tokens(out / "eval.bin", [eval_text], codec)
    meta = {}
    for v in variants:
        train, heldout = split_docs(frames[v.name], settings.val_fraction, settings.split_chars)
        describe = {"dataset": dataset, "dataset_version": version, "variant": v.name, "filter": v.filter,
                    "documents": frames[v.name].height,
                    "tokenizer_id": f"ablation-{settings.vocab_size}", "eval_file": str(eval_path)}
        meta[v.name] = write_variant(out / "data" / v.name, out, train, heldout, out / "eval.bin", eval_size, codec, describe)
    return Prepared(out, dataset, version, variants, meta, eval_path.name, settings)


def token_budget(prepared: Prepared) -> int:
    """Training tokens per model: as given, or what one model trains in `seconds` on this machine
    (measured by a short run), in whole optimizer steps. Every run of the ablation trains exactly these."""
    s = prepared.settings
    cfg = s.train_config(s.first_seed, s.tokens or 1)
    per_step = s.batch_size * cfg.block_size
    if s.tokens is not None:
        tokens = s.tokens
    else:
        first = prepared.variants[0].name
        rate = measure_tokens_per_second(prepared.variant_dir(first), prepared.out / "calibration", cfg,
                                         min(CALIBRATION_SECONDS, s.seconds))
        tokens = int(s.seconds * rate)
    return max(1, tokens // per_step) * per_step


def train_variant_seed(prepared: Prepared, variant: str, seed: int, max_tokens: int) -> tuple[list[dict], pl.DataFrame]:
    """Train and score one proxy model: its results rows and its validation curve."""
    s = prepared.settings
    cfg = s.train_config(seed, max_tokens)
    run = train_and_score(prepared.variant_dir(variant), prepared.out / "runs" / f"{variant}-seed{seed}", cfg,
                          max_tokens, prepared.score_on(), s.score_tokens)
    filter_ = next(v.filter for v in prepared.variants if v.name == variant)
    params = count_params(cfg.gpt_config(prepared.meta[variant]["vocab_size"]))
    rows = [{"variant": variant, "filter": filter_, "seed": seed, "scored_on": target, "bpb": bpb,
             "tokens": run.tokens, "steps": run.steps, "params": params} for target, bpb in run.bpb.items()]
    curve = run.curve.with_columns(pl.lit(variant).alias("variant"), pl.lit(seed).alias("seed"))
    return rows, curve.select("variant", "seed", "tokens", "val_bpb")


def finish(prepared: Prepared, max_tokens: int, rows: list[dict], curves: list[pl.DataFrame]) -> AblationReport:
    """Write results.parquet, curves.parquet, the plot and report.md; return the table and verdict."""
    results = pl.DataFrame(rows)
    curve_frame = pl.concat(curves)
    results.write_parquet(prepared.out / report.RESULTS_NAME)
    curve_frame.write_parquet(prepared.out / report.CURVES_NAME)
    report.plot(curve_frame, prepared.out / report.PLOT_NAME, prepared.eval_name)
    variants = pl.DataFrame([
        {"variant": v.name, "filter": v.filter,
         "docs": prepared.meta[v.name]["documents"],
         "train_tokens": prepared.meta[v.name]["train_tokens"],
         "epochs": max_tokens / max(prepared.meta[v.name]["train_tokens"], 1)}
        for v in prepared.variants
    ])
    table = report.table(results, variants)
    verdict = report.verdict(report.compare(results), prepared.eval_name)
    s = prepared.settings
    text = [f"# Ablation of {prepared.dataset} (docs version {prepared.docs_version})", "",
            f"{len(prepared.variants)} variants x {s.seeds} seeds, {max_tokens:,} training tokens per model, "
            f"preset {s.preset}, vocabulary {s.vocab_size}, one tokenizer for all; bits per byte, lower is better; "
            f"`eval` = {prepared.eval_name}, `val:X` = variant X's held-out text; mean ± sd [min–max] over seeds.",
            "", report.markdown(table), "", *[f"- {line}" for line in verdict], "",
            f"To reproduce these numbers exactly: `--tokens {max_tokens}` with the same seeds and settings:",
            "", "```json", json.dumps(s.model_dump() | {"tokens": max_tokens, "seconds": None}), "```", ""]
    (prepared.out / report.REPORT_NAME).write_text("\n".join(text), encoding="utf-8")
    return AblationReport(prepared.out, max_tokens, table, verdict, results)


def seeds(settings: AblationSettings) -> list[int]:
    return list(range(settings.first_seed, settings.first_seed + settings.seeds))


def run_ablation(dataset: str, variants: list[str], eval_file: str | Path, out: str | Path,
                 settings: AblationSettings, progress=None) -> AblationReport:
    """All steps in this process; `progress(variant, seed)` is called before each run."""
    prepared = prepare(dataset, variants, eval_file, out, settings)
    max_tokens = token_budget(prepared)
    rows, curves = [], []
    for v in prepared.variants:
        for seed in seeds(settings):
            if progress is not None:
                progress(v.name, seed)
            run_rows, curve = train_variant_seed(prepared, v.name, seed, max_tokens)
            rows += run_rows
            curves.append(curve)
    return finish(prepared, max_tokens, rows, curves)
