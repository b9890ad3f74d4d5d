"""`make bench`: every benchmark, each beside its peer measured in the same run.

Each writes its table to bench/results/<name>.md and prints it. `python -m bench.run --quick`
gives rough figures in a few minutes; `python -m bench.run build dedup` runs a subset.
"""

from __future__ import annotations

import argparse
import importlib
import time

BENCHES = {
    "build": "bench.bench_build",        # whole document build vs datatrove's FineWeb chain
    "dedup": "bench.bench_dedup",        # MinHash near-dedup vs datatrove's 4 stages; 10M scale run
    "pii": "bench.bench_pii",            # e-mail / IP redaction vs datatrove's PIIFormatter
    "scaling": "bench.bench_scaling",    # build throughput, 1 vs 2 workers, Dask LocalCluster, datatrove tasks=2
    "scale": "bench.bench_scale",        # peak RSS: 100M hashes through exact dedup, 10M through near dedup
    "tokenizer": "bench.bench_tokenizer",  # SentencePiece training, encode+pack vs raw encode
    "train": "bench.bench_train",        # training tokens/s vs a nanoGPT-style reference model
    "decontaminate": "bench.bench_decontaminate",  # 13-gram index memory and lookup speed, 100 MB eval set
    "export": "bench.bench_export",      # export's peak memory as the dataset grows
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHES)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and smaller inputs")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; known: {', '.join(BENCHES)}")
    for name in args.names or BENCHES:
        started = time.perf_counter()
        print(f"\n=== bench {name} ===", flush=True)
        importlib.import_module(BENCHES[name]).main(["--quick"] if args.quick else [])
        print(f"=== bench {name}: {time.perf_counter() - started:.0f} s ===", flush=True)


if __name__ == "__main__":
    main()
