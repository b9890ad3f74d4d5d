"""Tokenizer benchmark: SentencePiece training time, encode+pack throughput against raw
SentencePiece batch encoding of the same documents, and peak memory as the corpus grows.

    python -m bench.bench_tokenizer [--quick]

Corpus: every openly available text under ../shared/data (UDHR in 388 languages, lingua web
sentences in 75, WikiText-2, tinyshakespeare, two Gutenberg books) cut into ~4 KB documents at
line breaks (a web page's worth), repeated under new ids up to the size measured, and written as
a warehouse docs table (Delta) in a temporary folder.

Method (../shared/BENCH.md): each measurement runs in a fresh process; per core = one CPU
(sched_setaffinity, like `taskset -c 0`) with OMP_NUM_THREADS=1, then all cores; tokenmill and
the peer alternate (A B A B ...) and the table gives the median ratio with its min-max.
- tokenmill pack: read the docs table, split train/val, encode in worker processes, write
  train/val .bin/.idx (`tokenizer.pack`), end to end.
- raw SentencePiece: `sp.encode(texts, num_threads=k)` on the same documents already in memory
  (reading them is not timed), the ids left as Python lists.
- peak memory: `tokenize_dataset` end to end (survey, 5 MB tokenizer sample, training, pack) on
  10 MB and 100 MB corpora; the sum of PSS (forked workers share their parent's pages; PSS counts
  a shared page once) over the process and its workers, sampled every 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from bench.common import peak_tree_pss, publish

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("TOKENMILL_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "bench" / "results" / "tokenizer.md"
DOC_BYTES = 4_000
COMMIT_DOCS = 5_000  # documents per Delta commit (one Parquet file of ~20 MB of text)
MB = 1_000_000


def corpus_documents() -> list[str]:
    """The shared prose cut into ~DOC_BYTES documents at line breaks."""
    texts = []
    with zipfile.ZipFile(SHARED / "lid" / "udhr2_unicode.zip") as archive:
        texts += [archive.read(n).decode("utf-8") for n in sorted(archive.namelist()) if n.endswith(".txt")]
    texts += [p.read_text(encoding="utf-8") for p in sorted((SHARED / "lid" / "lingua_sentences_head100").glob("*.txt"))]
    prose = SHARED / "prose"
    texts += [(prose / n).read_bytes().decode("utf-8") for n in ("wikitext2_valid.txt", "tinyshakespeare.txt")]
    texts += [p.read_bytes().decode("utf-8") for p in sorted((prose / "gutenberg").glob("pg*.txt")) if "LATIN1" not in p.name]
    docs = []
    for text in texts:
        current, size = [], 0
        for line in text.split("\n"):
            current.append(line)
            size += len(line.encode()) + 1
            if size >= DOC_BYTES:
                docs.append("\n".join(current))
                current, size = [], 0
        if current:
            docs.append("\n".join(current))
    return docs


def write_corpus(root: Path, name: str, total_bytes: int) -> str:
    """A docs table of about `total_bytes` of text; returns its DIR/NAME."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from warehouse.layout import DatasetPaths
    from warehouse.schema import docs_schema

    docs = corpus_documents()
    path, written, rows, copy = DatasetPaths(str(root), name).docs, 0, [], 0
    while written < total_bytes:
        for i, text in enumerate(docs):
            rows.append({"id": f"{copy}-{i}", "source": "bench", "source_offset": i, "text": text})
            written += len(text.encode())
            if written >= total_bytes:
                break
        copy += 1
        if len(rows) >= COMMIT_DOCS or written >= total_bytes:
            write_deltalake(path, pa.Table.from_pylist(rows, schema=docs_schema([])), mode="append")
            rows = []
    return f"{root}/{name}"


# ---- measurements, each run in a fresh process (see _measure) -------------------------------------


def measure_train(spec: str, sample_bytes: int, model_type: str) -> dict:
    from tokenizer.sample import BoundedSample
    from tokenizer.sources import DatasetSource
    from tokenizer.train import TokenizerSettings, train_tokenizer

    source = DatasetSource(spec, 0.0)
    source.survey()
    sample = BoundedSample(source.training_texts(1.0), sample_bytes)
    sentences = list(sample)  # reading the sample is not part of the training time
    started = time.perf_counter()
    train_tokenizer(sentences, TokenizerSettings(vocab_size=8_000, model_type=model_type))
    return {"seconds": time.perf_counter() - started, "bytes": sample.n_bytes}


def measure_pack(spec: str, model: str, workers: int) -> dict:
    from tokenizer.pack import pack
    from tokenizer.sources import DatasetSource
    from tokenizer.train import EOS_ID

    proto = Path(model).read_bytes()
    source = DatasetSource(spec, 0.005)
    source.survey()
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        stats = pack(source.encode_jobs(), proto, Path(out), 8_000, EOS_ID, workers)
        seconds = time.perf_counter() - started
    text_bytes = sum(s.bytes for s in stats.splits.values())
    return {"seconds": seconds, "bytes": text_bytes, "tokens": sum(s.tokens for s in stats.splits.values())}


def measure_raw(spec: str, model: str, threads: int) -> dict:
    import sentencepiece as spm

    from warehouse.layout import DatasetPaths
    from warehouse.read import iter_doc_batches

    sp = spm.SentencePieceProcessor(model_file=model)
    texts = [t for b in iter_doc_batches(DatasetPaths.parse(spec), columns=("text",)) for t in b.column("text").to_pylist()]
    started = time.perf_counter()
    ids = sp.encode(texts, num_threads=threads)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes": sum(len(t.encode()) for t in texts), "tokens": sum(map(len, ids))}


def measure_build(spec: str, out: str, workers: int) -> dict:
    from tokenizer.cli import tokenize_dataset

    started = time.perf_counter()
    result = tokenize_dataset(spec, Path(out), vocab_size=8_000, sample_bytes=5 * MB, workers=workers, progress=False)
    m = result.meta
    return {"seconds": time.perf_counter() - started, "bytes": m["train_bytes"] + m["val_bytes"], "steps": result.seconds}


MEASURES = {"train": measure_train, "pack": measure_pack, "raw": measure_raw, "build": measure_build}


def run_measure(name: str, one_core: bool, watch_memory: bool = False, **kwargs) -> dict:
    """Run one measurement in a fresh process and return its result; with `watch_memory`, also the
    peak PSS of its process tree (sampling it costs CPU, so throughput runs are not watched)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} if one_core else dict(os.environ)
    args = [sys.executable, "-m", "bench.bench_tokenizer", "--measure", name, "--args", json.dumps(kwargs)]
    if one_core:
        args += ["--one-core"]
    child = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    peak = peak_tree_pss(child) if watch_memory else 0
    out, _ = child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"measurement {name} {kwargs} failed (exit {child.returncode})")
    return {**json.loads(out.strip().splitlines()[-1]), "peak_pss": peak}


def _measure(name: str, kwargs: dict, one_core: bool) -> None:
    if one_core:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    print(json.dumps(MEASURES[name](**kwargs)))


# ---- the report ------------------------------------------------------------------------------------


def mb_per_s(r: dict) -> float:
    return r["bytes"] / MB / r["seconds"]


def training_rows(spec: str, sample_mb: dict[str, int]) -> list[str]:
    rows = ["| SentencePiece training (vocab 8,000) | sample | seconds | MB/s |", "|---|---:|---:|---:|"]
    for model_type, mb in sample_mb.items():
        r = run_measure("train", False, spec=spec, sample_bytes=mb * MB, model_type=model_type)
        rows.append(f"| {model_type} | {r['bytes'] / MB:.1f} MB | {r['seconds']:.1f} | {mb_per_s(r):.2f} |")
    return rows


def throughput_rows(spec: str, model: Path, size_mb: int, cores: int, pairs: int) -> list[str]:
    rows = [
        f"| encode + pack, {size_mb} MB of text, {pairs} alternating pairs | tokenmill MB/s "
        "| raw sentencepiece MB/s | tokenmill / raw (median, min-max) |",
        "|---|---:|---:|---:|",
    ]
    for label, one_core, k in (
        ("per core (1 CPU, 1 worker / 1 thread)", True, 1),
        (f"all cores ({cores} workers / threads)", False, cores),
    ):
        ours, raw = [], []
        for _ in range(pairs):
            ours.append(run_measure("pack", one_core, spec=spec, model=str(model), workers=k))
            raw.append(run_measure("raw", one_core, spec=spec, model=str(model), threads=k))
        ratios = sorted(mb_per_s(a) / mb_per_s(b) for a, b in zip(ours, raw))
        rows.append(
            f"| {label} | {statistics.median(map(mb_per_s, ours)):.2f} | {statistics.median(map(mb_per_s, raw)):.2f} "
            f"| {statistics.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f}) |"
        )
    rows.append(
        f"\n{ours[0]['tokens'] / (ours[0]['bytes'] / MB):,.0f} tokens per MB of text. tokenmill reads the Delta table, "
        "splits, encodes and writes .bin/.idx; raw only encodes texts already in memory."
    )
    return rows


def memory_rows(tmp: Path, sizes_mb: tuple[int, ...], cores: int) -> list[str]:
    rows = [
        f"| tokenize_dataset end to end (5 MB sample, {cores} workers) | seconds | peak memory (PSS), all processes |",
        "|---|---:|---:|",
    ]
    for size in sizes_mb:
        spec = write_corpus(tmp, f"mem{size}", size * MB)
        r = run_measure("build", False, watch_memory=True, spec=spec, out=str(tmp / f"tokens{size}"), workers=cores)
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in r["steps"].items())
        rows.append(f"| {size} MB of text ({steps}) | {r['seconds']:.1f} | {r['peak_pss'] / 2**20:.0f} MiB |")
    return rows


def machine() -> str:
    import numpy
    import sentencepiece

    with open("/proc/cpuinfo") as cpuinfo:
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    return (
        f"{os.cpu_count()} cores ({cpu or platform.processor()}), load average {os.getloadavg()[0]:.1f} at the start, "
        f"Python {platform.python_version()}, sentencepiece {sentencepiece.__version__}, numpy {numpy.__version__}"
    )


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller corpora and samples")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--args", help=argparse.SUPPRESS)
    parser.add_argument("--one-core", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.measure:
        _measure(opts.measure, json.loads(opts.args), opts.one_core)
        return ""

    cores = len(os.sched_getaffinity(0))
    # Training samples stay within the ~10 MB of distinct shared text (the corpus repeats beyond).
    size_mb, sample_mb = (5, {"bpe": 5, "unigram": 2}) if opts.quick else (20, {"bpe": 10, "unigram": 10})
    header = machine()
    with tempfile.TemporaryDirectory(prefix="bench-tokenizer-") as tmp:
        tmp = Path(tmp)
        spec = write_corpus(tmp, "bench", size_mb * MB)
        run_measure("build", False, spec=spec, out=str(tmp / "tokens"), workers=cores)
        rows = [
            *training_rows(spec, sample_mb),
            "",
            *throughput_rows(spec, tmp / "tokens" / "tokenizer.model", size_mb, cores, pairs=3),
            "",
            *memory_rows(tmp, (10, 100), cores),
        ]
    command = "python -m bench.bench_tokenizer" + (" --quick" if opts.quick else "")
    report = "\n".join(
        [
            "# Tokenizer benchmark",
            "",
            f"Machine: {header}. Command: `{command}`. {time.strftime('%Y-%m-%d')}.",
            f"Corpus: shared/data prose in ~{DOC_BYTES // 1000} KB documents, {COMMIT_DOCS:,} per Delta commit "
            "(see bench/bench_tokenizer.py).",
            "",
            *rows,
            "",
        ]
    )
    return publish(report, RESULTS)


if __name__ == "__main__":
    main()
