"""`tokenmill report DIR/NAME`: one self-contained HTML page about a dataset version.

The funnel, rejects per stage and reason, languages, a histogram of every quality signal, the
duplicate rates, the token counts of each tokenizer made from it and the loss curve of the latest
training run, drawn by matplotlib as inline SVG: nothing is fetched when the page is viewed, so it
opens offline, from a mail attachment or an artifact store. Written next to the dataset as
`reports/docs-v<version>.html` unless told otherwise.
"""

from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone

import fsspec
import polars as pl
from matplotlib import rcParams
from matplotlib.figure import Figure

from model.metrics import METRICS_NAME
from warehouse import stats
from warehouse.layout import DatasetPaths, join
from warehouse.read import docs_version, scan

rcParams["svg.fonttype"] = "none"  # text stays text: smaller, selectable, searchable
rcParams["svg.hashsalt"] = "tokenmill"  # stable ids: the same data gives the same file
STAGE_ORDER = ["read", "extract", "langid", "quality", "exact_dedup", "dedup"]
DUPLICATE_REASONS = {"exact_duplicate": "exact duplicate", "near_duplicate": "near duplicate"}
LINEAGE_NAME = "lineage.json"  # model/train.py writes it; importing that module would load torch


@dataclass
class Plot:
    id: str
    title: str
    svg: str
    note: str = ""


def svg(fig: Figure) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline: no XML declaration or DOCTYPE inside HTML


def figure(width: float = 7.0, height: float = 3.2) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def funnel_plot(ds: DatasetPaths) -> Plot:
    frame = stats.stages(ds)
    order = {name: i for i, name in enumerate(STAGE_ORDER)}
    frame = frame.with_columns(pl.col("stage").replace_strict(order, default=len(order)).alias("o")).sort("o")
    fig, ax = figure(height=0.45 * (frame.height + 1) + 1)
    labels = ["records in"] + [f"after {s}" for s in frame["stage"]]
    values = [frame["records_in"][0]] + frame["records_out"].to_list()
    bars = ax.barh(labels[::-1], values[::-1], color="C0")
    ax.bar_label(bars, labels=[f"{v:,}" for v in values[::-1]], padding=3)
    ax.set_xlabel("records")
    ax.margins(x=0.15)
    return Plot("funnel", "Funnel: records left after each stage", svg(fig))


def rejects_plot(ds: DatasetPaths, top: int = 25) -> Plot:
    frame = (scan(ds, "rejects").group_by("stage", "reason").agg(pl.len().alias("records"))
             .sort("records", descending=True).collect())
    shown = frame.head(top)
    fig, ax = figure(height=0.3 * (shown.height + 1) + 1)
    labels = [f"{s} · {r}" for s, r in zip(shown["stage"], shown["reason"])][::-1]
    colors = [f"C{STAGE_ORDER.index(s) % 10 if s in STAGE_ORDER else 9}" for s in shown["stage"]][::-1]
    bars = ax.barh(labels, shown["records"].to_list()[::-1], color=colors)
    ax.bar_label(bars, padding=3)
    ax.set_xlabel("records dropped")
    ax.margins(x=0.12)
    note = f"{frame.height - top} rarer reasons not drawn" if frame.height > top else ""
    return Plot("rejects", "Rejects per stage and reason", svg(fig), note)


def languages_plot(ds: DatasetPaths) -> Plot:
    frame = stats.languages(ds)
    fig, ax = figure()
    bars = ax.bar(frame["lang"].to_list(), frame["docs"].to_list(), color="C2")
    ax.bar_label(bars, padding=2)
    ax.set_ylabel("documents kept")
    return Plot("languages", "Languages of the kept documents", svg(fig))


def quality_plot(ds: DatasetPaths, columns_per_row: int = 5) -> Plot:
    docs = scan(ds, "docs")
    names = [c for c in docs.collect_schema().names() if c.startswith("q_") or c in ("n_words", "n_chars")]
    values = docs.select(names).collect()
    names = [c for c in names if values[c].drop_nulls().len() > 0]
    rows = -(-len(names) // columns_per_row)
    fig = Figure(figsize=(2.3 * columns_per_row, 1.9 * rows))
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, columns_per_row, i + 1)
        ax.hist(values[name].drop_nulls().cast(pl.Float64).to_numpy(), bins=20, color="C0")
        ax.set_title(name.removeprefix("q_"), fontsize=8)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return Plot("quality", "Quality signals of the kept documents (one histogram each)", svg(fig),
                f"{len(names)} signals over {values.height:,} documents")


def duplicates_plot(ds: DatasetPaths) -> Plot:
    funnel = stats.funnel(ds)
    records_in = max(int(funnel["records"][0]), 1)
    dropped = funnel.filter(pl.col("reason").is_in(list(DUPLICATE_REASONS)))
    rates = {f"{label} ({stage})": 0.0 for reason, label in DUPLICATE_REASONS.items()
             for stage in ("read", "exact_dedup", "dedup") if (reason == "near_duplicate") == (stage == "dedup")}
    for stage, reason, records in dropped.select("stage", "reason", "records").iter_rows():
        rates[f"{DUPLICATE_REASONS[reason]} ({stage})"] = 100 * records / records_in
    fig, ax = figure(height=2.4)
    bars = ax.barh(list(rates)[::-1], list(rates.values())[::-1], color="C3")
    ax.bar_label(bars, labels=[f"{v:.1f} %" for v in list(rates.values())[::-1]], padding=3)
    ax.set_xlabel("% of records in")
    ax.margins(x=0.15)
    return Plot("duplicates", "Duplicate rates", svg(fig),
                "read: WARC revisit records; exact_dedup: the same normalised text; dedup: MinHash near-duplicates")


def token_metas(ds: DatasetPaths) -> list[dict]:
    fs, base = fsspec.core.url_to_fs(join(ds.base, "tokens"))
    metas = []
    for path in sorted(fs.glob(join(base, "*", "meta.json"))):
        with fs.open(path) as f:
            metas.append(json.load(f))
    return metas


def tokens_plot(ds: DatasetPaths) -> Plot | None:
    metas = token_metas(ds)
    if not metas:
        return None
    fig, ax = figure(height=0.5 * len(metas) + 1.2)
    labels = [m["tokenizer_id"] for m in metas]
    train = [m["train_tokens"] for m in metas]
    val = [m["val_tokens"] for m in metas]
    ax.barh(labels, train, color="C0", label="train")
    bars = ax.barh(labels, val, left=train, color="C1", label="validation")
    ax.bar_label(bars, labels=[f"{t:,} + {v:,}" for t, v in zip(train, val)], padding=3)
    ax.set_xlabel("tokens")
    ax.legend(loc="lower right")
    ax.margins(x=0.3)
    return Plot("tokens", "Token counts per tokenizer", svg(fig))


def latest_run(ds: DatasetPaths) -> tuple[str, dict] | None:
    """The run folder and lineage of the most recently started training run on this dataset."""
    fs, root = fsspec.core.url_to_fs(join(ds.root, "runs"))
    found = []
    for path in fs.glob(join(root, "*", LINEAGE_NAME)):
        with fs.open(path) as f:
            lineage = json.load(f)
        if lineage.get("dataset") and DatasetPaths.parse(lineage["dataset"]).name == ds.name:
            found.append((lineage.get("started_at", ""), path.rpartition("/")[0], lineage))
    if not found:
        return None
    _, run, lineage = max(found, key=lambda item: item[0])
    return run, lineage


def loss_plot(ds: DatasetPaths) -> Plot | None:
    found = latest_run(ds)
    if found is None:
        return None
    run, lineage = found
    fs, _ = fsspec.core.url_to_fs(ds.root)
    with fs.open(join(run, METRICS_NAME)) as f:
        metrics = pl.read_parquet(f)
    fig, ax = figure(height=3.6)
    train = metrics.drop_nulls("train_loss")
    val = metrics.drop_nulls("val_loss")
    ax.plot(train["tokens"].to_list(), train["train_loss"].to_list(), color="C0", label="train loss")
    ax.plot(val["tokens"].to_list(), val["val_loss"].to_list(), "o-", color="C1", label="validation loss")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("loss (nats / token)")
    ax.legend()
    bpb = val["val_bpb"][-1] if val.height else None
    note = (f"run {run.rpartition('/')[2]}: dataset version {lineage.get('dataset_version')}, "
            f"tokenizer {lineage.get('tokenizer_id')}, {lineage.get('n_params', 0):,} parameters"
            + (f"; final validation {bpb:.4f} bits per byte" if bpb is not None else ""))
    return Plot("loss", "Loss curve of the latest training run", svg(fig), note)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
figure {{ margin: 2em 0; }} figcaption {{ font-weight: 600; margin-bottom: .4em; }}
figure svg {{ max-width: 100%; height: auto; }} .note {{ color: #666; font-size: .9em; }}
table {{ border-collapse: collapse; }} td, th {{ padding: .2em .8em; text-align: right; border-bottom: 1px solid #ddd; }}
</style></head><body>
<h1>{title}</h1>
<p>{summary}</p>
{figures}
<p class="note">Written by <code>tokenmill report</code> at {written}. Every number comes from the
warehouse's Delta tables; query them with Polars: <code>pl.scan_delta("{docs}")</code>.</p>
</body></html>
"""


def render(ds: DatasetPaths) -> str:
    version = docs_version(ds)
    funnel = stats.funnel(ds)
    builds = scan(ds, "builds").sort("finished_at").collect()
    plots = [funnel_plot(ds), rejects_plot(ds), languages_plot(ds), quality_plot(ds), duplicates_plot(ds),
             tokens_plot(ds), loss_plot(ds)]
    figures = "\n".join(
        f'<figure id="{p.id}"><figcaption>{html.escape(p.title)}</figcaption>{p.svg}'
        + (f'<p class="note">{html.escape(p.note)}</p>' if p.note else "") + "</figure>"
        for p in plots if p is not None
    )
    kept, records_in = int(funnel["records"][1]), int(funnel["records"][0])
    last = builds.row(-1, named=True) if builds.height else {}
    summary = (f"Docs version <b>{version}</b> of <code>{html.escape(ds.base)}</code>: <b>{kept:,}</b> documents kept "
               f"of {records_in:,} records ({kept / max(records_in, 1):.1%}), {builds.height} build(s); latest "
               f"build <code>{html.escape(str(last.get('build_id', '-')))}</code>.")
    return PAGE.format(title=html.escape(f"tokenmill: {ds.name}, docs version {version}"), summary=summary,
                       figures=figures, written=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       docs=html.escape(ds.docs))


def default_path(ds: DatasetPaths) -> str:
    return join(ds.base, "reports", f"docs-v{docs_version(ds)}.html")


def write_report(dataset: str, out: str | None = None) -> str:
    """Render the report of `dataset` (DIR/NAME) at its current version; return where it was written."""
    ds = DatasetPaths.parse(dataset)
    page = render(ds)
    out = out or default_path(ds)
    with fsspec.open(out, "w", encoding="utf-8", auto_mkdir=True) as f:
        f.write(page)
    return out
