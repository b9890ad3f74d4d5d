"""The `tokenmill` command line. Each command is a thin shell over a flow or a package function."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

import flows  # noqa: F401  (sets Prefect's embedded defaults before prefect is imported)
from tokenizer import defaults as tokenizer_defaults
from warehouse.errors import TokenmillError, UsageError
from warehouse.layout import DEFAULT_ROOT

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Raw web crawl in, trained language model out.")
# Piped output (CI logs, `| less`) gets a width the stats tables fit in, not rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)  # an error stays one line, however long


@contextmanager
def clear_errors():
    """Turn the errors a user can cause (missing input, bad config, no such dataset) into one line.
    Only `TokenmillError`: anything else is a bug, and its traceback is what a bug report needs."""
    try:
        yield
    except TokenmillError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


def validated(settings_class, command: str, **values):
    """A pydantic settings object from CLI options; an out-of-range option is one line, not a traceback."""
    import pydantic

    try:
        return settings_class(**values)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"{command}: {where + ': ' if where else ''}{first['msg']}") from None


def print_frame(title: str, frame) -> None:
    table = Table(title=title, title_justify="left")
    for name in frame.columns:
        table.add_column(name, justify="right" if frame[name].dtype.is_numeric() else "left")
    for row in frame.iter_rows():
        table.add_row(*("" if v is None else f"{v:,.4g}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    console.print(table)


def print_stats(dataset: str) -> None:
    from warehouse import stats
    from warehouse.layout import DatasetPaths

    ds = DatasetPaths.parse(dataset)
    print_frame(f"{ds.name}: funnel", stats.funnel(ds))
    print_frame(f"{ds.name}: stages (all inputs)", stats.stages(ds))
    print_frame(f"{ds.name}: languages", stats.languages(ds))
    print_frame(f"{ds.name}: quality signals of kept documents", stats.quality(ds))
    scores = stats.quality_scores(ds)
    if scores is None:
        console.print(f"{ds.name}: quality_score: no classifier (no build configured [quality.classifier]; "
                      "the column is null, not a score)", markup=False, highlight=False)
    else:
        models = ", ".join(stats.classifier_models(ds))
        print_frame(f"{ds.name}: quality_score of kept documents (classifier {models})", scores)
    redacted = stats.redactions(ds)
    if redacted.height:
        print_frame(f"{ds.name}: PII redacted in kept documents", redacted)


def print_dedup_report(report) -> None:
    console.print(
        f"near-dedup: {report.removed:,} near-duplicates removed, {report.clusters:,} clusters, "
        f"{report.candidate_pairs:,} candidate pairs ({report.false_positives:,} dropped by the exact Jaccard check), "
        f"{report.signed:,} documents signed of {report.documents:,}, bands {report.bands}x{report.rows}"
    )


@app.command()
def build(
    inputs: Annotated[list[str], typer.Argument(help="WARC/WET/ARC, HTML, JSONL, txt, Parquet files, folders, globs, fsspec URLs, hf:NAME[[:CONFIG]:SPLIT]")],
    warehouse: Annotated[str, typer.Option(envvar="TOKENMILL_WAREHOUSE", help="warehouse root (path or fsspec URL)")] = DEFAULT_ROOT,
    dataset: Annotated[str, typer.Option(help="dataset name inside the warehouse")] = "default",
    config: Annotated[Optional[Path], typer.Option(help="TOML or YAML build config")] = None,
    workers: Annotated[Optional[int], typer.Option(help="inputs processed at once, each in a worker process (default: all cores)")] = None,
    runner: Annotated[Optional[str], typer.Option(help="process: worker processes of this one; dask: a Dask LocalCluster of --workers "
                                                  "(each input a Prefect task; default: the config's runner, process)")] = None,
    dask_address: Annotated[Optional[str], typer.Option(help="Dask scheduler: inputs and near-dedup run on that cluster")] = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for another build of the dataset to end")] = 0,
    retry_failed: Annotated[bool, typer.Option(help="read again the inputs that ended in read_error or worker_crashed")] = False,
    prefect: Annotated[Optional[bool], typer.Option(
        "--prefect/--no-prefect",
        help="run as a Prefect flow (starting a temporary API when none is configured); "
             "default: only when a Prefect API is configured (PREFECT_API_URL) or Dask is used")] = None,
) -> None:
    """Build (or extend) a dataset of clean, scored documents; re-runs skip committed inputs."""
    from flows.settings import dask_address as resolve_dask_address
    from flows.settings import prefect_api_configured

    if runner != "dask" and not resolve_dask_address(dask_address):
        from pipeline.forkserver import start_forkserver

        # The workers' server imports the pipeline while this process does, from the first moment:
        # reading the config imports a third of it. (A config saying runner = "dask" leaves the
        # server unused; it ends with this process.)
        start_forkserver()
    from pipeline.config import load_config

    with clear_errors():
        cfg = load_config(config)
        if workers:
            cfg = cfg.model_copy(update={"workers": workers})
        from pipeline.process import DocumentPipeline
        from pipeline.readers import expand_inputs

        # Fail fast, with one line, before Prefect starts: inputs, the stages and their models.
        expand_inputs(inputs)
        DocumentPipeline(cfg).check()
        # Dask runs inputs and near-dedup tasks through prefect-dask: a flow, on whatever API there is.
        runner = runner or cfg.runner
        if runner not in ("process", "dask"):
            raise UsageError(f"--runner must be process or dask, got {runner!r}")
        dask = runner == "dask" or bool(resolve_dask_address(dask_address))
        if prefect if prefect is not None else prefect_api_configured() or dask:
            from flows.build_corpus import build_corpus

            # The flow takes the dataset's concurrency slot, then its writer lock, as a deployment
            # run does: one order everywhere, so a CLI build and a scheduled one queue, never deadlock.
            summary = build_corpus(inputs, warehouse=warehouse, dataset=dataset, config=cfg, dask_address=dask_address,
                                   lock_wait=wait, retry_failed=retry_failed, runner=runner)
        else:
            from flows.build_steps import check_no_dask, run_build
            from warehouse.layout import DatasetPaths

            check_no_dask(runner, dask_address)  # --no-prefect with Dask asked for: one line, now
            summary = run_build(inputs, DatasetPaths(warehouse, dataset), cfg, lock_wait=wait,
                                retry_failed=retry_failed, runner=runner)  # it holds the writer lock
        console.print(f"build [bold]{summary.build_id}[/]: {summary.inputs} inputs "
                      f"({summary.inputs_skipped} already committed), docs version {summary.docs_version}")
        if summary.near_dedup is not None:
            print_dedup_report(summary.near_dedup)
        if summary.decontamination is not None:
            print_decontamination_report(summary.decontamination)
        print_stats(f"{warehouse}/{dataset}")
        for failure in summary.failed:
            err.print(f"[red]not built[/] (the next build reads it again): {failure.unit.key}: {failure.error}")
        if summary.failed:
            raise typer.Exit(1)


@app.command()
def extract(files: Annotated[list[str], typer.Argument(help="HTML, .html.gz or WARC files")]) -> None:
    """Print one JSON line per extracted document (no filtering): for debugging a page."""
    from pipeline.config import BuildConfig
    from pipeline.extract import Extractor
    from pipeline.readers import expand_inputs, read_unit
    from pipeline.records import Rejection

    cfg = BuildConfig()
    extractor = Extractor(cfg.extract)
    with clear_errors():
        for unit in expand_inputs(files):
            for record in read_unit(unit, cfg.read):
                if isinstance(record, Rejection):
                    err.print(f"[yellow]{record.source}@{record.source_offset}[/] {record.reason}: {record.detail}")
                    continue
                result = extractor(record)
                if isinstance(result, Rejection):
                    err.print(f"[yellow]{record.source}@{record.source_offset}[/] {result.reason}: {result.detail}")
                    continue
                line = {"source": record.source, "url": record.url, "title": result.title, "text": result.text}
                sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")


quality_app = typer.Typer(no_args_is_help=True, help="The model-based quality score: train a classifier.")
app.add_typer(quality_app, name="quality")


@quality_app.command("train")
def quality_train(
    positive: Annotated[list[str], typer.Option(help="reference text: files, folders, JSONL, hf:..., or a dataset DIR/NAME (repeat)")],
    negative: Annotated[str, typer.Option(help="DIR/NAME of a built dataset: a random sample of its documents")],
    out: Annotated[Path, typer.Option(help="the fastText model file to write (its metrics go beside it)")],
    seed: Annotated[int, typer.Option()] = 0,
    epoch: Annotated[int, typer.Option(help="passes over the training chunks (5 is plenty at DCLM's scale)")] = 25,
    test_fraction: Annotated[float, typer.Option(help="share of each class held out for the metrics")] = 0.2,
) -> None:
    """Train a fastText classifier (DCLM recipe: word bigrams) and print its held-out AUC, precision, recall."""
    from pipeline.quality.classifier_train import ClassifierTraining, metrics_path, train_classifier

    with clear_errors():
        settings = validated(ClassifierTraining, "quality train", seed=seed, epoch=epoch, test_fraction=test_fraction)
        report = train_classifier(positive, negative, out, settings)
        console.print(report.summary(), markup=False, highlight=False)
        console.print(f"metrics saved to {metrics_path(out)}; use it in a build with\n"
                      f"  [quality.classifier]\n  model_path = \"{out}\"", markup=False, highlight=False)


@app.command()
def stats(dataset: Annotated[str, typer.Argument(help="DIR/NAME of a built dataset")]) -> None:
    """Print the funnel (records in, kept, dropped per reason), languages and quality summaries."""
    with clear_errors():
        print_stats(dataset)


@app.command()
def dedup(
    dataset: Annotated[str, typer.Argument(help="DIR/NAME of a built dataset")],
    config: Annotated[Optional[Path], typer.Option(help="TOML or YAML build config (its [dedup] section)")] = None,
    dask_address: Annotated[Optional[str], typer.Option(help="Dask scheduler address")] = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for a build of the dataset to end")] = 0,
) -> None:
    """Remove near-duplicates (MinHash LSH) from a built dataset; incremental over earlier runs."""
    from pipeline.config import load_config
    from warehouse.layout import DatasetPaths

    with clear_errors():
        cfg = load_config(config)
        ds = DatasetPaths.parse(dataset)
        from warehouse.read import docs_version

        docs_version(ds)  # a clear error before Prefect starts, if there is no such dataset
        from flows.near_dedup import near_dedup
        from warehouse.lock import writer_lock

        with writer_lock(ds, "tokenmill dedup", wait=wait):
            print_dedup_report(near_dedup(ds, cfg.dedup, dask_address))


def print_decontamination_report(report) -> None:
    files = ", ".join(f"{name}: {count:,}" for name, count in sorted(report.per_file.items())) or "none"
    console.print(
        f"decontamination: {report.removed:,} of {report.documents:,} documents removed ({files}); "
        f"index of {report.index_ngrams:,} n-grams, {report.index_bytes / 2**20:,.1f} MiB", highlight=False,
    )


@app.command()
def decontaminate(
    dataset: Annotated[str, typer.Argument(help="DIR/NAME of a built dataset")],
    against: Annotated[list[str], typer.Option(help="evaluation file (JSONL, Parquet or text); repeat for more")],
    ngram: Annotated[Optional[int], typer.Option(help="words per n-gram (default 13, or the config's)")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML or YAML build config (its [decontaminate] section)")] = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for a build of the dataset to end")] = 0,
) -> None:
    """Remove documents that share a word n-gram with evaluation sets; they become rejects."""
    from pipeline.config import load_config
    from warehouse.layout import DatasetPaths
    from warehouse.read import docs_version

    with clear_errors():
        cfg = load_config(config).decontaminate
        cfg = cfg.model_copy(update={"against": against, **({"ngram": ngram} if ngram else {})})
        ds = DatasetPaths.parse(dataset)
        docs_version(ds)  # a clear error before Prefect starts, if there is no such dataset
        from flows.decontaminate import decontaminate as decontaminate_flow
        from warehouse.lock import writer_lock

        with writer_lock(ds, "tokenmill decontaminate", wait=wait):  # it deletes from docs
            print_decontamination_report(decontaminate_flow(ds, cfg))


@app.command()
def export(
    dataset: Annotated[str, typer.Argument(help="DIR/NAME of a built dataset")],
    format: Annotated[str, typer.Option("--format", help="hf (datasets.load_from_disk), jsonl (gzipped shards) or parquet")],
    out: Annotated[Path, typer.Option(help="new folder to write (it must not exist)")],
    version: Annotated[Optional[int], typer.Option(help="docs table version (default: the current one)")] = None,
    shard_mb: Annotated[float, typer.Option(help="size of a shard, MB of uncompressed data")] = 256,
) -> None:
    """Write a dataset version as a Hugging Face dataset, JSONL or Parquet shards, with lineage.json."""
    from warehouse.export import export_dataset
    from warehouse.layout import DatasetPaths

    with clear_errors():
        report = export_dataset(DatasetPaths.parse(dataset), format, out, version, int(shard_mb * 1_000_000))
        console.print(f"exported docs version {report.docs_version}: {report.documents:,} documents in "
                      f"{len(report.files)} file(s) to {report.out} ({format}); lineage in {report.out}/lineage.json",
                      highlight=False)


@app.command()
def tokenize(
    dataset: Annotated[Optional[str], typer.Option(help="DIR/NAME of a built dataset")] = None,
    text: Annotated[Optional[list[Path]], typer.Option(help="plain UTF-8 text file(s) instead of a dataset: --text A B ...")] = None,
    more_text: Annotated[Optional[list[Path]], typer.Argument(help="more text files after --text FILE", show_default=False)] = None,
    out: Annotated[Optional[Path], typer.Option(help="output folder (dataset default: DIR/NAME/tokens/<tokenizer-id>)")] = None,
    vocab_size: Annotated[Optional[int], typer.Option(help="vocabulary size (default: sized to the training text, 1,024 to 32,768)")] = None,
    model_type: Annotated[str, typer.Option(help="bpe or unigram")] = tokenizer_defaults.MODEL_TYPE,
    val_fraction: Annotated[float, typer.Option(help="validation share: documents, or the last part of the text")] = tokenizer_defaults.VAL_FRACTION,
    sample_bytes: Annotated[int, typer.Option(help="bytes of text the tokenizer is trained on at most")] = tokenizer_defaults.SAMPLE_BYTES,
    workers: Annotated[Optional[int], typer.Option(help="encoding processes (default: all cores)")] = None,
) -> None:
    """Train a SentencePiece tokenizer and pack train.bin / val.bin token files."""
    from tokenizer.cli import tokenize_command
    from tokenizer.sources import TokenizeError

    with clear_errors():
        if more_text and not text:
            raise TokenizeError(f"{more_text[0]}: text files follow --text (tokenmill tokenize --text FILE... --out DIR)")
        files = (text or []) + (more_text or [])
        result = tokenize_command(dataset, files or None, out, vocab_size, model_type, val_fraction, sample_bytes, workers)
        console.print(result.summary(), markup=False, highlight=False)


@app.command()
def train(
    tokens_dir: Annotated[Path, typer.Argument(help="folder with train.bin, val.bin, meta.json, tokenizer.model")],
    out: Annotated[Path, typer.Option(help="run folder: checkpoints, metrics.parquet, lineage.json")],
    config: Annotated[Optional[Path], typer.Option(help="TOML or YAML training config")] = None,
    preset: Annotated[Optional[str], typer.Option(help="model preset: tiny, small, 50M, 124M")] = None,
    max_seconds: Annotated[Optional[float], typer.Option(help="stop after this much time: every step (compilation included), evaluation and checkpoint counts, setup does not. Alone (no --config, --preset): the model, batch and learning rate are planned for it")] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help="stop after this many training tokens")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto (CUDA when present), cuda or cpu")] = None,
    resume: Annotated[bool, typer.Option(help="continue the run in --out exactly where it stopped")] = False,
) -> None:
    """Train the compact decoder-only model; prints its plan and cost estimate first, then a progress table."""
    from model.config import load_train_config
    from model.train import train as train_model

    with clear_errors():
        # No config and no preset: a resume keeps the checkpoint's config, and --max-seconds alone is planned.
        chosen = config is not None or preset is not None
        planned = not chosen and (resume or (max_seconds is not None and max_tokens is None))
        cfg = None if planned else load_train_config(config, preset=preset)
        result = train_model(tokens_dir, out, cfg, resume=resume, max_tokens=max_tokens,
                             max_seconds=max_seconds, device=device, console=console)
        bpb = f"{result.val_bpb:.4f}" if result.val_bpb is not None else "n/a"
        console.print(f"{result.run_dir}: {result.steps} steps, {result.tokens:,} tokens, val bits/byte {bpb}")


@app.command()
def ablate(
    dataset: Annotated[str, typer.Argument(help="DIR/NAME of a built dataset")],
    variant: Annotated[list[str], typer.Option(help="NAME=FILTER: all, docs, or a Polars SQL expression such as 'quality_score >= 0.5' (repeat)")],
    eval: Annotated[Path, typer.Option(help="held-out clean text every model is scored on (UTF-8)")],
    out: Annotated[Path, typer.Option(help="output folder: results.parquet, validation_curves.png, report.md, runs")],
    seconds: Annotated[Optional[float], typer.Option(help="budget per model: the tokens one model trains in this many seconds here")] = None,
    tokens: Annotated[Optional[int], typer.Option(help="budget per model in training tokens (exact; reproduces a run)")] = None,
    seeds: Annotated[int, typer.Option(help="proxy models per variant")] = 3,
    preset: Annotated[str, typer.Option(help="proxy model shape")] = "small",
    vocab_size: Annotated[int, typer.Option(help="the one tokenizer's vocabulary")] = 1024,
    threads: Annotated[int, typer.Option(help="CPU threads per run (fixed, so runs reproduce exactly)")] = 1,
) -> None:
    """Does a filter make the model better? Proxy models at equal compute on variants of one build."""
    from ablation.ablate import AblationSettings

    with clear_errors():
        settings = validated(AblationSettings, "ablate", seconds=seconds if tokens is None else None, tokens=tokens,
                             seeds=seeds, preset=preset, vocab_size=vocab_size, threads=threads)
        from ablation import report
        from flows.ablate import ablate as ablate_flow

        result = ablate_flow(dataset, variant, str(eval), str(out), settings)
        print_frame(f"{dataset}: bits per byte ({result.tokens:,} training tokens per model, {seeds} seeds, lower is better)", result.table)
        for line in result.verdict:
            console.print(line, markup=False, highlight=False)
        console.print(f"{out}: {report.RESULTS_NAME}, {report.PLOT_NAME}, {report.REPORT_NAME}; "
                      f"reproduce exactly with --tokens {result.tokens}", markup=False, highlight=False)


@app.command()
def sample(
    run: Annotated[Path, typer.Argument(help="run folder made by `tokenmill train`")],
    prompt: Annotated[str, typer.Option(help="text to continue")] = "",
    temperature: Annotated[float, typer.Option(help="0 is greedy")] = 0.8,
    top_k: Annotated[Optional[int], typer.Option(help="sample from the k most likely tokens")] = 200,
    max_new_tokens: Annotated[int, typer.Option(help="tokens to generate")] = 200,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cuda or cpu")] = "auto",
) -> None:
    """Generate text from a trained run."""
    from model.sample import sample_run

    with clear_errors():
        text = sample_run(run, prompt, temperature, top_k, max_new_tokens, seed, device)
        console.print(text, markup=False, highlight=False)


@app.command()
def plan(
    flops: Annotated[Optional[float], typer.Option(help="budget in FLOPs")] = None,
    gpu_hours: Annotated[Optional[float], typer.Option(help="budget in GPU-hours (needs --peak-tflops)")] = None,
    dollars: Annotated[Optional[float], typer.Option(help="budget in dollars (needs --price and --peak-tflops)")] = None,
    price: Annotated[Optional[float], typer.Option(help="dollars per GPU-hour")] = None,
    peak_tflops: Annotated[Optional[float], typer.Option(help="device peak, TFLOP/s (e.g. 989 for an H100 in bf16)")] = None,
    mfu: Annotated[float, typer.Option(help="fraction of peak actually reached")] = 0.4,
) -> None:
    """Turn a compute budget into a compute-optimal model size, token count and training config."""
    from model.plan import budget_to_flops, plan_budget, plan_report

    with clear_errors():
        peak = peak_tflops * 1e12 if peak_tflops else None
        budget = budget_to_flops(flops=flops, gpu_hours=gpu_hours, dollars=dollars,
                                 price_per_gpu_hour=price, peak_flops=peak, mfu=mfu)
        console.print(plan_report(plan_budget(budget), peak, mfu, price), markup=False, highlight=False)


@app.command()
def report(
    dataset: Annotated[str, typer.Argument(help="DIR/NAME of a built dataset")],
    out: Annotated[Optional[str], typer.Option(help="HTML file (default: DIR/NAME/reports/docs-v<version>.html)")] = None,
) -> None:
    """Write one self-contained HTML page of plots about the dataset's current version."""
    from flows.report import write_report

    with clear_errors():
        console.print(write_report(dataset, out), markup=False, highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
