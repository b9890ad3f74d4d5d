"""`make demo`: raw crawl to generated text in one command, on the bundled sample.

Builds the corpus from sample/ (real gov.uk and Common Crawl WARCs, two Project Gutenberg books as
HTML), prints its stats, trains a tokenizer and a small model for a couple of minutes, and prints
validation bits-per-byte and generated text, and writes the dataset's HTML report. Re-running reuses the committed build and token files.
"""

from __future__ import annotations

import os

import flows  # noqa: F401  (Prefect's embedded defaults)
from flows.build_corpus import build_corpus
from flows.cli import console, print_dedup_report, print_stats
from flows.report import write_report
from flows.settings import SAMPLE_INPUTS, train_max_seconds, warehouse_root
from flows.train_after_build import train_after_build

WAREHOUSE = warehouse_root()
DATASET = "sample"
# train-after-build's defaults are the sample's settings; only the budget is the demo's own.
TRAIN_SECONDS = float(os.environ.get("TOKENMILL_DEMO_SECONDS") or train_max_seconds())


def main() -> None:
    console.rule("[bold]1. build-corpus[/]: sample WARCs and HTML → clean documents")
    summary = build_corpus(SAMPLE_INPUTS, warehouse=WAREHOUSE, dataset=DATASET)
    if summary.near_dedup is not None:
        print_dedup_report(summary.near_dedup)
    print_stats(f"{WAREHOUSE}/{DATASET}")

    console.rule(f"[bold]2. train-after-build[/]: tokenizer, token files, {TRAIN_SECONDS:.0f} s of training")
    result = train_after_build(f"{WAREHOUSE}/{DATASET}", max_seconds=TRAIN_SECONDS, prompt="The ")
    console.print(result.tokens.summary())
    run = result.run
    console.print(f"run [bold]{run.run_dir}[/]: {run.steps} steps, {run.tokens:,} tokens, "
                  f"{run.tokens_per_s:,.0f} tokens/s, validation loss {run.val_loss:.3f} nats/token, "
                  f"[bold]{run.val_bpb:.3f} bits per byte[/]")
    console.rule("[bold]3. generated text[/]")
    console.print(result.sample, markup=False, highlight=False)
    console.rule("[bold]4. report[/]: funnel, rejects, languages, quality signals, duplicates, tokens, loss curve")
    console.print(f"open {write_report(f'{WAREHOUSE}/{DATASET}')}", markup=False, highlight=False)


if __name__ == "__main__":
    main()
