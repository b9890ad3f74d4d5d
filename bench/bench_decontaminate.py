"""Memory and speed of the decontamination index on a synthetic 100 MB evaluation set (run once).

    python -m bench.bench_decontaminate [--mb 100]

Writes a plain-text evaluation file of random words (Zipf-like frequencies over a 50,000-word
vocabulary, 100-word paragraphs, so nearly every 13-gram is distinct: the worst case for the
index), then builds the `NgramIndex` in a fresh process and reports its peak resident memory
above the process's memory after imports, the index's own size, and the time to build it and to
look up documents. The table goes to bench/results/decontaminate.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import cpu_model, load_note, peak_rss_bytes, publish, rss_bytes

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "decontaminate.md"


def write_eval_set(path: Path, megabytes: float, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{i:x}" for i in range(50_000)])
    weights = 1 / np.arange(1, 50_001) ** 0.8
    weights /= weights.sum()
    written = 0
    with path.open("w", encoding="utf-8") as out:
        while written < megabytes * 1_000_000:
            words = vocabulary[rng.choice(50_000, size=(2_000, 100), p=weights)]
            block = "\n\n".join(" ".join(row) for row in words) + "\n\n"
            out.write(block)
            written += len(block)
    return written


def measure(paths: list[str]) -> dict:
    """Run in a fresh process: build the index, then match 10,000 documents drawn from the set."""
    from pipeline.decontaminate import NgramIndex, evaluation_texts

    from pipeline.dedup.minhash import flat_shingle_hashes

    flat_shingle_hashes(["warm up the compiled kernels"], 13, use_kernels=True)  # numba compiles (or loads) them once
    base = rss_bytes() / 2**20
    started, cpu = time.perf_counter(), time.process_time()
    index = NgramIndex.build(paths, n=13)
    build_seconds, build_cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = peak_rss_bytes() / 2**20
    docs = [text for _, text in zip(range(10_000), evaluation_texts(paths[-1]))]
    started, cpu = time.perf_counter(), time.process_time()
    file_number, _ = index.match(docs)
    match_seconds, match_cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"base_mib": base, "peak_mib": peak, "index_mib": index.nbytes / 2**20, "ngrams": len(index.hashes),
            "build_seconds": build_seconds, "build_cpu": build_cpu, "match_docs_per_s": len(docs) / match_seconds,
            "match_docs_per_cpu_s": len(docs) / match_cpu, "matched": int((file_number >= 0).sum()), "docs": len(docs)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--quick", action="store_true", help="a 20 MB set instead (bench.run --quick)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.mb = min(args.mb, 20.0)
    if args.measure:
        print(json.dumps(measure(args.measure.split(","))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-decontam-") as tmp:
        # Two files (two benchmarks): the index is built per file, then merged (the costlier path).
        paths = [Path(tmp) / "eval_a.txt", Path(tmp) / "eval_b.txt"]
        size = sum(write_eval_set(path, args.mb / 2, seed) for seed, path in enumerate(paths))
        out = subprocess.run([sys.executable, "-m", "bench.bench_decontaminate", "--measure", ",".join(map(str, paths))],
                             cwd=REPO, capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
    report = "\n".join([
        "# Decontamination index: memory and speed on a synthetic evaluation set",
        "",
        f"Machine: {cpu_model()}; wall and CPU times given. One process, one run. {load_note()}",
        f"Command: `python -m bench.bench_decontaminate --mb {args.mb:g}`",
        f"Evaluation set: {size / 1e6:,.1f} MB of plain text in two files, random words (Zipf-like over 50,000), "
        "100-word paragraphs: nearly every 13-gram distinct, the index's worst case.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| distinct 13-grams in the index | {r['ngrams']:,} |",
        f"| index size (sorted uint64 hashes + uint16 file numbers) | {r['index_mib']:,.0f} MiB |",
        f"| process memory after imports | {r['base_mib']:,.0f} MiB |",
        f"| peak resident memory while building | {r['peak_mib']:,.0f} MiB |",
        f"| peak above the imports | {r['peak_mib'] - r['base_mib']:,.0f} MiB |",
        f"| index build time, wall (CPU) | {r['build_seconds']:,.1f} s ({r['build_cpu']:,.1f} s) |",
        f"| lookup, 100-word documents per second of wall time (of CPU time) | {r['match_docs_per_s']:,.0f} ({r['match_docs_per_cpu_s']:,.0f}) |",
        f"| documents drawn from the set found contaminated | {r['matched']:,} of {r['docs']:,} |",
        "",
    ])
    publish(report, RESULTS)


if __name__ == "__main__":
    main()
