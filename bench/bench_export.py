"""Memory of `tokenmill export` as the dataset grows: peak RSS per format at two dataset sizes (run once).

    python -m bench.bench_export [--mb 100]

Writes a dataset of synthetic documents (1,000 random words, about 6 KB each) straight into a
warehouse docs table, in commits of about 12 MB, at MB/4 and at MB of text; exports it in each format in a fresh
process and reports the peak resident memory of that process above its memory after imports.
Bounded memory means the peak does not grow with the dataset. The table goes to
bench/results/export.md.
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
import pyarrow as pa

from bench.common import cpu_model, load_note, peak_rss_bytes, publish, rss_bytes

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "export.md"


def write_dataset(root: Path, megabytes: float) -> int:
    from pipeline.process import DOCS_SCHEMA
    from warehouse.commit import _append
    from warehouse.layout import DatasetPaths

    ds = DatasetPaths(str(root), "big")
    rng = np.random.default_rng(0)
    vocabulary = np.array([f"w{i:x}" for i in range(20_000)])
    written = docs = 0
    while written < megabytes * 1e6:
        texts = [" ".join(row) for row in vocabulary[rng.integers(0, 20_000, size=(2_000, 1_000))]]
        rows = {name: pa.nulls(len(texts), DOCS_SCHEMA.field(name).type) for name in DOCS_SCHEMA.names}
        rows.update(id=pa.array([f"d{docs + i}" for i in range(len(texts))]), source=pa.array(["synthetic"] * len(texts)),
                    source_offset=pa.array(range(docs, docs + len(texts)), pa.int64()), text=pa.array(texts))
        _append(ds.docs, pa.table(rows), DOCS_SCHEMA)
        written += sum(map(len, texts))
        docs += len(texts)
    return written


def measure(root: str, fmt: str, out: str) -> dict:
    from warehouse.export import export_dataset
    from warehouse.layout import DatasetPaths

    if fmt == "hf":
        import datasets  # noqa: F401  (imported before the baseline, as the other formats' libraries are)
    base = rss_bytes() / 2**20
    started = time.perf_counter()
    report = export_dataset(DatasetPaths(root, "big"), fmt, out, shard_bytes=50_000_000, progress=False)
    seconds = time.perf_counter() - started
    peak = peak_rss_bytes() / 2**20
    return {"base": base, "peak": peak, "seconds": seconds, "files": len(report.files), "docs": report.documents}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--quick", action="store_true", help="a 20 MB set instead (bench.run --quick)")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.mb = min(args.mb, 20.0)
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    rows = []
    for megabytes in (args.mb / 4, args.mb):
        with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
            size = write_dataset(Path(tmp), megabytes)
            for fmt in ("parquet", "jsonl", "hf"):
                out = subprocess.run([sys.executable, "-m", "bench.bench_export", "--measure", tmp, fmt, f"{tmp}/out-{fmt}"],
                                     cwd=REPO, capture_output=True, text=True, check=True)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(f"| {size / 1e6:,.0f} MB ({r['docs']:,} docs) | {fmt} | {r['files']} | "
                            f"{r['peak'] - r['base']:,.0f} MiB | {r['seconds']:,.1f} s |")
    report = "\n".join([
        "# Export: peak memory as the dataset grows",
        "",
        f"Machine: {cpu_model()}; times are wall times. One run. {load_note()}",
        f"Command: `python -m bench.bench_export --mb {args.mb:g}` — synthetic documents of about 6 KB in a docs table "
        "committed about 12 MB at a time, exported with 50 MB shards, each export in a fresh process.",
        "",
        "| dataset text | format | files | peak RSS above imports | time |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ])
    publish(report, RESULTS)


if __name__ == "__main__":
    main()
