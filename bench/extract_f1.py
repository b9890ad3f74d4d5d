"""Main-text extraction quality and speed on the article-extraction benchmark pages.

    python -m bench.extract_f1                 # F1 of the default ExtractConfig
    python -m bench.extract_f1 --speed         # F1 and docs/s of several settings, one core -> bench/results/extract.md
    python -m bench.extract_f1 --slowest 15    # ms per page of the default Extractor, one core

Quality: the metric of scrapinghub/article-extraction-benchmark's evaluate.py, on the 20 pages in
shared/data/extraction (html/<id>.html.gz, ground-truth.json {id: {url, articleBody}}). Both
texts are split into `\\w+` tokens and counted as multisets of word 4-gram shingles (a text of
fewer than 4 tokens is one shorter shingle); per page tp, fp, fn are the shared, extra and missed
shingles, normalised by their sum so long pages weigh no more than short ones; precision is the
mean over pages where tp+fp > 0, recall the mean over pages where tp+fn > 0 (a page with no
shingles on either side counts in neither, as in evaluate.py), F1 their harmonic mean.

Speed (`--speed`, ../shared/BENCH.md): one core (sched_setaffinity to CPU 0, one BLAS thread),
every setting run on the same inputs in alternating rounds, median docs/s with min-max. Inputs:
the 20 benchmark pages, and every HTML response in shared/data/warc/*.warc.gz. Every setting
starts from the raw bytes, so charset decoding is timed for all of them alike.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import platform
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import trafilatura
from trafilatura import bare_extraction, load_html
from warcio.archiveiterator import ArchiveIterator

from pipeline.charset import decode_html
from pipeline.config import ExtractConfig
from pipeline.extract import Extracted, Extractor
from pipeline.records import RawRecord
from bench.common import cpu_model

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TOKENMILL_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "bench" / "results" / "extract.md"

_TOKEN = re.compile(r"\w+")
SHINGLE_WORDS = 4


def shingles(text: str, n: int = SHINGLE_WORDS) -> Counter:
    """Multiset of word n-grams of `text`, as evaluate.py counts them."""
    tokens = _TOKEN.findall(text or "")
    starts = range(max(1, len(tokens) - n + 1))
    return Counter(tuple(tokens[i : i + n]) for i in starts if tokens[i : i + n])


def page_scores(true: str, predicted: str) -> tuple[float, float, float]:
    """(tp, fp, fn) shingle counts of one page, normalised to sum to 1 (all 0 when both empty)."""
    true_shingles, predicted_shingles = shingles(true), shingles(predicted)
    tp = sum((true_shingles & predicted_shingles).values())
    fp = sum((predicted_shingles - true_shingles).values())
    fn = sum((true_shingles - predicted_shingles).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def benchmark_metrics(scores: list[tuple[float, float, float]]) -> dict[str, float]:
    """Mean precision, mean recall and their harmonic mean over pages, as evaluate.py does."""

    def ratio(tp: float, other: float, fp: float, fn: float) -> float:
        return 1.0 if fp == fn == 0 else tp / (tp + other)

    precisions = [ratio(tp, fp, fp, fn) for tp, fp, fn in scores if tp + fp > 0]
    recalls = [ratio(tp, fn, fp, fn) for tp, fp, fn in scores if tp + fn > 0]
    precision = statistics.mean(precisions) if precisions else 0.0
    recall = statistics.mean(recalls) if recalls else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f1": f1, "precision": precision, "recall": recall}


def load_benchmark(pages_dir: Path, ground_truth_json: Path) -> list[tuple[str, str, bytes, str]]:
    """(id, url, raw HTML bytes, true article body) for every page of the ground truth."""
    truth = json.loads(Path(ground_truth_json).read_text(encoding="utf-8"))
    pages = []
    for page_id, item in sorted(truth.items()):
        body = gzip.decompress((Path(pages_dir) / f"{page_id}.html.gz").read_bytes())
        pages.append((page_id, item.get("url"), body, item.get("articleBody", "")))
    return pages


def html_record(source: str, body: bytes, url: str | None, http_charset: str | None = None) -> RawRecord:

    return RawRecord(source=source, source_offset=0, kind="html", body=body, url=url,
                     http_charset=http_charset)


def extraction_f1(pages_dir: str | Path, ground_truth_json: str | Path, **settings) -> dict:
    """Benchmark metrics of `Extractor(ExtractConfig(**settings))` on the pages in `pages_dir`.

    Returns {"f1", "precision", "recall", "pages", "rejected"}; a rejected page counts as an
    empty extraction.
    """
    extractor = Extractor(ExtractConfig(**settings))
    scores, rejected = [], 0
    for page_id, url, body, true_text in load_benchmark(Path(pages_dir), Path(ground_truth_json)):
        result = extractor(html_record(page_id, body, url))
        if not isinstance(result, Extracted):
            rejected += 1
        scores.append(page_scores(true_text, result.text if isinstance(result, Extracted) else ""))
    return {**benchmark_metrics(scores), "pages": len(scores), "rejected": rejected}


# ---------------------------------------------------------------------------------------------
# --speed: the settings compared in bench/results/extract.md


def warc_html_records(warc_dir: Path) -> list[RawRecord]:
    """Every HTML response of the WARC files in `warc_dir`, as extractor input records."""
    records = []
    for path in sorted(warc_dir.glob("*.warc.gz")):
        with open(path, "rb") as stream:
            for rec in ArchiveIterator(stream):
                if rec.rec_type != "response" or rec.http_headers is None:
                    continue
                content_type = rec.http_headers.get_header("Content-Type") or ""
                if "html" not in content_type:
                    continue
                charset = re.search(r"charset=([\w:.-]+)", content_type)
                records.append(html_record(path.name, rec.content_stream().read(),
                                           rec.rec_headers.get_header("WARC-Target-URI"),
                                           charset.group(1) if charset else None))
    return records


DATATROVE = "datatrove's call: extract(str, favor_precision, no comments, no dedup)"


def speed_settings() -> dict[str, Callable]:
    """Name -> function(record) -> text, for every setting in the comparison table."""
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
    base = dict(favor_precision=True, include_comments=False, deduplicate=False)

    def tokenmill(**overrides):
        extractor = Extractor(ExtractConfig(**overrides))

        def run(record):
            result = extractor(record)
            return result.text if isinstance(result, Extracted) else ""

        return run

    def traf(tree=False, **kwargs):
        def run(record):
            html = decode_html(record.body, record.http_charset)[0]
            document = bare_extraction(load_html(html) if tree else html, **kwargs)
            return document.text if document is not None else ""

        return run

    def datatrove(record):
        # datatrove's Trafilatura step on the decoded page
        html = decode_html(record.body, record.http_charset)[0]
        return trafilatura.extract(html, **base) or ""

    return {
        DATATROVE: datatrove,
        "tokenmill Extractor (defaults: precision, fast pass then full cascade, title+date)": tokenmill(),
        "tokenmill Extractor, favor_precision=False (balanced, full cascade)":
            tokenmill(favor_precision=False),
        "tokenmill Extractor, include_tables=False": tokenmill(include_tables=False),
        "bare_extraction(str) precision, full cascade + with_metadata": traf(with_metadata=True, **base),
        "bare_extraction(str) precision, fast (no_fallback)": traf(fast=True, **base),
        "bare_extraction(tree parsed by us) precision, full cascade": traf(tree=True, **base),
        "bare_extraction(str) precision, full cascade, include_tables=False":
            traf(include_tables=False, **base),
        "bare_extraction(str) balanced, fast": traf(fast=True, include_comments=False, deduplicate=False),
    }




def speed_table(rounds: int) -> str:
    """The comparison table: F1 on the benchmark pages, docs/s on them and on the WARC pages."""
    os.sched_setaffinity(0, {0})
    bench = load_benchmark(SHARED / "extraction" / "html", SHARED / "extraction" / "ground-truth.json")
    pages = [html_record(page_id, body, url) for page_id, url, body, _ in bench]
    crawl = warc_html_records(SHARED / "warc")
    settings = speed_settings()
    quality = {
        name: benchmark_metrics([page_scores(truth, run(rec)) for rec, (*_, truth) in zip(pages, bench)])
        for name, run in settings.items()
    }
    times: dict[str, dict[str, list[float]]] = {name: {"pages": [], "crawl": []} for name in settings}
    for _ in range(rounds):
        for name, run in settings.items():
            for label, records in (("pages", pages), ("crawl", crawl)):
                start = time.perf_counter()
                for record in records:
                    run(record)
                times[name][label].append(len(records) / (time.perf_counter() - start))

    def rate(values: list[float]) -> str:
        return f"{statistics.median(values):5.1f} ({min(values):.0f}-{max(values):.0f})"

    def ratio(name: str, label: str) -> str:
        # per round: this setting's docs/s over datatrove's in the same round
        ratios = [a / b for a, b in zip(times[name][label], times[DATATROVE][label])]
        return f"{statistics.median(ratios):4.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"

    lines = [
        f"machine: {cpu_model()}, {os.cpu_count()} cores; one core (CPU 0), "
        f"{rounds} alternating rounds; python {platform.python_version()}, "
        f"trafilatura {trafilatura.__version__}",
        f"inputs: {len(pages)} benchmark pages ({sum(len(r.body) for r in pages) / 1e6:.1f} MB), "
        f"{len(crawl)} WARC HTML responses ({sum(len(r.body) for r in crawl) / 1e6:.1f} MB)",
        "docs/s: median (min-max) over rounds; vs datatrove: median (min-max) of per-round ratios",
        f"{'setting':84s} {'F1':>5s} {'P':>5s} {'R':>5s}  {'pages docs/s':>15s} {'vs datatrove':>18s}"
        f"  {'WARC docs/s':>15s} {'vs datatrove':>18s}",
    ]
    for name in settings:
        q = quality[name]
        lines.append(f"{name:84s} {q['f1']:5.3f} {q['precision']:5.3f} {q['recall']:5.3f}  "
                     f"{rate(times[name]['pages']):>15s} {ratio(name, 'pages'):>18s}  "
                     f"{rate(times[name]['crawl']):>15s} {ratio(name, 'crawl'):>18s}")
    return "\n".join(lines)


def page_times_table(rounds: int, slowest: int) -> str:
    """Median ms per page of the default Extractor over `rounds` passes: the totals over the
    benchmark and the WARC pages, and the `slowest` pages one by one."""
    os.sched_setaffinity(0, {0})
    bench = load_benchmark(SHARED / "extraction" / "html", SHARED / "extraction" / "ground-truth.json")
    groups = {"benchmark": [html_record(page_id, body, url) for page_id, url, body, _ in bench],
              "WARC": warc_html_records(SHARED / "warc")}
    pages = [(label, record) for label, records in groups.items() for record in records]
    extractor = Extractor(ExtractConfig())
    times: list[list[float]] = [[] for _ in pages]
    for _ in range(rounds):
        for (_, record), page_times in zip(pages, times):
            start = time.perf_counter()
            extractor(record)
            page_times.append((time.perf_counter() - start) * 1000)
    medians = [statistics.median(page_times) for page_times in times]
    lines = [f"default Extractor, one core (CPU 0), median of {rounds} passes"]
    for label, records in groups.items():
        total = sum(ms for ms, (group, _) in zip(medians, pages) if group == label)
        lines.append(f"{label}: {len(records)} pages, {total:.0f} ms, {total / len(records):.1f} ms per page")
    lines.append(f"{'ms':>8s} {'KB':>6s}  page")
    for ms, (_, record) in sorted(zip(medians, pages), key=lambda item: -item[0])[:slowest]:
        lines.append(f"{ms:8.1f} {len(record.body) / 1e3:6.0f}  {record.url or record.source}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speed", action="store_true", help="compare settings: F1 and docs/s on one core")
    parser.add_argument("--slowest", type=int, metavar="N", help="ms per page: totals and the N slowest pages")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.slowest is not None:
        print(page_times_table(args.rounds, args.slowest))
        return 0
    if args.speed:
        table = speed_table(args.rounds)
        RESULTS.write_text(f"# Extraction: quality and speed of the settings\n\nCommand: `python -m bench.extract_f1 "
                           f"--speed` (writes this file)\n\n```\n{table}\n```\n")
        print(table)
        return 0
    metrics = extraction_f1(SHARED / "extraction" / "html", SHARED / "extraction" / "ground-truth.json")
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
