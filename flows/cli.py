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

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Raw web crawl in, trained language model out.")
# Piped output (CI logs, `| less`) gets a width the stats tables fit in, not rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


@contextmanager
def clear_errors():
    """Turn the errors a user can cause (missing input, bad config, no such dataset) into one line."""
    from pipeline.config import ConfigError
    from pipeline.readers import InputNotFound
    from tokenizer.tokenfile import TokenFileError
    from warehouse.read import DatasetNotFound

    try:
        yield
    except (InputNotFound, ConfigError, DatasetNotFound, TokenFileError, FileNotFoundError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None


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


def print_dedup_report(report) -> None:
    console.print(
        f"near-dedup: {report.removed:,} near-duplicates removed, {report.clusters:,} clusters, "
        f"{report.candidate_pairs:,} candidate pairs ({report.false_positives:,} dropped by the exact Jaccard check), "
        f"{report.signed:,} documents signed of {report.documents:,}, bands {report.bands}x{report.rows}"
    )


@app.command()
def build(
    inputs: Annotated[list[str], typer.Argument(help="WARC/WET/ARC, HTML, JSONL, txt, Parquet files, folders, globs, fsspec URLs, hf:NAME")],
    warehouse: Annotated[str, typer.Option(help="warehouse root (path or fsspec URL)")] = "data/warehouse",
    dataset: Annotated[str, typer.Option(help="dataset name inside the warehouse")] = "default",
    config: Annotated[Optional[Path], typer.Option(help="TOML or YAML build config")] = None,
    workers: Annotated[Optional[int], typer.Option(help="processes (default: all cores)")] = None,
    dask_address: Annotated[Optional[str], typer.Option(help="Dask scheduler for the near-dedup stage")] = None,
) -> None:
    """Build (or extend) a dataset of clean, scored documents; re-runs skip committed inputs."""
    from pipeline.config import load_config

    with clear_errors():
        cfg = load_config(config)
        if workers:
            cfg = cfg.model_copy(update={"workers": workers})
        from pipeline.readers import expand_inputs

        expand_inputs(inputs)  # fail fast, with one line, before Prefect starts
        from flows.build_corpus import build_corpus

        summary = build_corpus(inputs, warehouse=warehouse, dataset=dataset, config=cfg, dask_address=dask_address)
        console.print(f"build [bold]{summary.build_id}[/]: {summary.inputs} inputs "
                      f"({summary.inputs_skipped} already committed), docs version {summary.docs_version}")
        if summary.near_dedup is not None:
            print_dedup_report(summary.near_dedup)
        print_stats(f"{warehouse}/{dataset}")


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

        print_dedup_report(near_dedup(ds, cfg.dedup, dask_address))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
