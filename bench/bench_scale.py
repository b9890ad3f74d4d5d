"""Memory at scale: 100 M text hashes through exact dedup, 10 M documents' signatures through near dedup.

    python -m bench.bench_scale [--quick] [--hashes N] [--batch N] [--near-docs N]

- exact dedup: `ExactDeduplicator` (pipeline/exact_dedup.py) over a docs table that grows to
  --hashes rows (default 100 M; --quick 5 M), fed in inputs of --batch documents (default 2 M:
  the flow's per-input join, with an input the size of ~60 Common Crawl WARC files). Each input
  is split (joined against the committed hashes) and its kept documents appended to the table, as
  the flow does. Synthetic documents (id, url, source, offset, empty text and text hash, the
  columns the deduplicator reads or passes on): random 62-bit hashes, 5 % of them copies of an earlier
  document of the same input or of an earlier one; every copy must be removed and nothing else.
- for contrast, the index the deduplicator kept before (a Python dict hash -> id, read from the
  docs table) on the first --dict-hashes rows (default 10 M; --quick 1 M).
- near dedup: the 10 M-row scale run of bench.bench_dedup (synthetic band keys through grouping,
  union-find and the keeper rule), run here through its own workers.

Each part runs in its own process (all cores); the table gives its wall time and peak RSS
(VmHWM, bench/common.py:peak_rss_bytes). Goal: under 4 GiB for both. Writes bench/results/scale.md.
The machine may be shared: times are of one run and move with the load; peak RSS does not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import cpu_model, load_note, peak_rss_bytes, publish

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "scale.md"
GIB = 1024**3
COPY_RATE = 0.05
RESERVOIR = 1_000_000  # hashes of earlier inputs that later ones copy from
WARC_DOCS = 30_000  # about one Common Crawl WARC's documents after filtering


def _repeated(value: str, n: int):
    """A string array of n times `value`, built from buffers (pa.array of a list is slow at 100 M)."""
    import numpy as np
    import pyarrow as pa

    data = value.encode()
    offsets = np.arange(n + 1, dtype=np.int64) * len(data)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data * n)).cast(pa.string())


def synthetic_docs(batch: int, n: int, rng, reservoir):
    """n documents of input `batch`, 5 % of them copies; also how many copies were planted."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipeline.process import DOCS_SCHEMA

    hashes = rng.integers(-(2**62), 2**62, n)
    is_copy = rng.random(n) < COPY_RATE
    copies, originals = np.flatnonzero(is_copy), np.flatnonzero(~is_copy)
    fresh = hashes[originals]
    # A copy takes the hash of an original document: of this input, or (half of them) of an earlier one.
    hashes[copies] = fresh[rng.integers(0, len(fresh), len(copies))]
    if len(reservoir):
        earlier = copies[rng.random(len(copies)) < 0.5]
        hashes[earlier] = reservoir[rng.integers(0, len(reservoir), len(earlier))]
    columns = {
        "id": pc.binary_join_element_wise(f"i{batch:04d}-", pa.array(np.arange(n)).cast(pa.string()), ""),
        "url": pa.nulls(n, pa.string()),
        "source": _repeated(f"input-{batch:04d}", n),
        "source_offset": pa.array(np.arange(n)),
        "text": _repeated("", n),
        "text_hash": pa.array(hashes),
    }
    # Only the columns exact dedup reads or passes on to rejects: the other columns of a docs row
    # would cost the generator time and memory, not the deduplicator.
    table = pa.table(columns, schema=pa.schema([DOCS_SCHEMA.field(name) for name in columns]))
    return table, len(copies), fresh


def worker_exact(hashes: int, batch: int, work: Path) -> dict:
    """Every input through split + append, as the flow commits them; time, removed, peak RSS."""
    import numpy as np

    from pipeline.exact_dedup import ExactDeduplicator
    from warehouse.layout import DatasetPaths
    from warehouse.storage import append_delta

    ds = DatasetPaths(str(work), "exact")
    dedup = ExactDeduplicator.for_dataset(ds)
    rng = np.random.default_rng(0)
    reservoir = np.empty(0, np.int64)
    planted = removed = 0
    split_seconds = append_seconds = 0.0
    started = time.perf_counter()
    for b, first in enumerate(range(0, hashes, batch)):
        docs, copies, fresh = synthetic_docs(b, min(batch, hashes - first), rng, reservoir)
        planted += copies
        t = time.perf_counter()
        kept, rejects, new = dedup.split(docs)
        dedup.remember(new)
        split_seconds += time.perf_counter() - t
        t = time.perf_counter()
        append_delta(ds.docs, kept)
        dedup.committed()
        append_seconds += time.perf_counter() - t
        removed += rejects.num_rows
        keep = rng.random(len(fresh)) < RESERVOIR / max(hashes, 1)
        reservoir = np.concatenate([reservoir, fresh[keep]])[-RESERVOIR:]
        print(f"  input {b}: {first + docs.num_rows:,} documents, split {split_seconds:.0f} s, "
              f"peak RSS {peak_rss_bytes() / GIB:.2f} GiB", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    # What the next input costs once the dataset is this big: an input the size of one Common Crawl
    # WARC's kept documents, split (not committed) against every committed hash, three times.
    warc_sized = []
    for _ in range(3):
        docs, _, _ = synthetic_docs(b + 1, WARC_DOCS, rng, reservoir)
        t = time.perf_counter()
        dedup.split(docs)
        warc_sized.append(time.perf_counter() - t)
    return {"documents": hashes, "inputs": b + 1, "planted": planted, "removed": removed,
            "seconds": seconds, "split_seconds": split_seconds,
            "append_seconds": append_seconds, "peak_rss": peak_rss_bytes(), "warc_split_seconds": sorted(warc_sized)}


def worker_dict(rows: int, work: Path) -> dict:
    """The previous exact-dedup index: every (hash, id) of the docs table in a Python dict."""
    from deltalake import DeltaTable

    baseline = peak_rss_bytes()
    started = time.perf_counter()
    seen: dict[int, str] = {}
    # File by file: leaving a scanner's batch iterator mid-way leaves its threads running, and the
    # process aborts at exit ("terminate called without an active exception").
    for fragment in DeltaTable(str(work / "exact" / "docs")).to_pyarrow_dataset().get_fragments():
        batch = fragment.to_table(columns=["text_hash", "id"])
        seen.update(zip(batch.column("text_hash").to_pylist(), batch.column("id").to_pylist()))
        del batch
        if len(seen) >= rows:
            break
    return {"entries": len(seen), "seconds": time.perf_counter() - started, "peak_rss": peak_rss_bytes(),
            "bytes_per_entry": (peak_rss_bytes() - baseline) / max(len(seen), 1)}


def _run(args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", *args], env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (exit {out.returncode})")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 M hashes in 1 M inputs, 1 M signatures")
    parser.add_argument("--hashes", type=int, help="documents through exact dedup (default 100 M)")
    parser.add_argument("--batch", type=int, help="documents per input (default 2 M)")
    parser.add_argument("--dict-hashes", type=int, help="entries of the previous in-memory index (default 10 M)")
    parser.add_argument("--near-docs", type=int, help="signature rows through near dedup (default 10 M)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    hashes = args.hashes or (5_000_000 if args.quick else 100_000_000)
    batch = args.batch or (1_000_000 if args.quick else 2_000_000)
    dict_rows = min(args.dict_hashes or (1_000_000 if args.quick else 10_000_000), hashes)
    near_docs = args.near_docs or (1_000_000 if args.quick else 10_000_000)

    if args.worker:  # inside a subprocess, whose peak RSS is its own
        work = Path(args.work)
        result = worker_exact(hashes, batch, work) if args.worker == "exact" else worker_dict(dict_rows, work)
        print(json.dumps(result))
        return ""

    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=os.environ.get("TOKENMILL_BENCH_TMP")) as tmp:
        tmp = Path(tmp)
        print(f"exact dedup: {hashes:,} documents in inputs of {batch:,}", flush=True)
        exact = _run(["bench.bench_scale", "--worker", "exact", "--hashes", str(hashes), "--batch", str(batch),
                      "--work", str(tmp)])
        print(f"the previous in-memory index: {dict_rows:,} entries", flush=True)
        index = _run(["bench.bench_scale", "--worker", "dict", "--hashes", str(hashes), "--dict-hashes", str(dict_rows),
                      "--work", str(tmp)])
        table_bytes = sum(f.stat().st_size for f in (tmp / "exact" / "docs").rglob("*") if f.is_file())
        print(f"near dedup: {near_docs:,} signature rows", flush=True)
        near_store = tmp / "near"
        _run(["bench.bench_dedup", "--worker", "scale-store", "--scale-docs", str(near_docs), "--work", str(near_store)])
        started = time.perf_counter()
        near = _run(["bench.bench_dedup", "--worker", "scale", "--work", str(near_store)])
        near_seconds = time.perf_counter() - started

    ok = "yes" if exact["removed"] == exact["planted"] else f"NO: {exact['removed']:,} removed, {exact['planted']:,} planted"
    per_entry = index["bytes_per_entry"]
    lines = [
        "# Scale: exact and near dedup in bounded memory",
        "",
        f"Machine: {os.cpu_count()} cores, {cpu_model()}. Times are of one run, all cores; each row is one process, "
        f"its peak RSS (VmHWM). {load_note()}",
        f"Command: `python -m bench.bench_scale{' --quick' if args.quick else ''}`",
        "",
        "| run | documents | time | peak RSS |",
        "|---|---|---|---|",
        f"| exact dedup: {exact['inputs']} inputs of {batch:,} joined against the committed hashes, kept ones appended "
        f"(split {exact['split_seconds']:.0f} s, append {exact['append_seconds']:.0f} s) "
        f"| {exact['documents']:,} | {exact['seconds']:.0f} s | {exact['peak_rss'] / GIB:.2f} GiB |",
        f"| then one more input of {WARC_DOCS:,} documents (about one Common Crawl WARC's kept pages) split against "
        f"all {exact['documents']:,}: median of 3 (min–max) | {WARC_DOCS:,} | "
        f"{exact['warc_split_seconds'][1]:.2f} s ({exact['warc_split_seconds'][0]:.2f}–{exact['warc_split_seconds'][2]:.2f}) | |",
        f"| the previous in-memory index (dict hash -> id) built from that table, for contrast "
        f"| {index['entries']:,} | {index['seconds']:.0f} s | {index['peak_rss'] / GIB:.2f} GiB "
        f"(~{per_entry:.0f} B a document: {per_entry * exact['documents'] / GIB:.0f} GiB at {exact['documents']:,}) |",
        f"| near dedup: bench_dedup's scale run (band grouping, union-find, keepers) "
        f"| {near['docs']:,} | {near_seconds:.0f} s | {near['peak_rss'] / GIB:.2f} GiB |",
        "",
        f"Exact dedup removed {exact['removed']:,} copies of {exact['planted']:,} planted ({COPY_RATE:.0%}, half of "
        f"them of an earlier input); every copy removed and nothing else: {ok}. Docs table on disk: "
        f"{table_bytes / GIB:.2f} GiB. Near dedup: {near['pairs']:,} candidate pairs, {near['clusters']:,} clusters, "
        f"{near['removed']:,} removed.",
    ]
    return publish("\n".join(lines) + "\n", RESULTS)


if __name__ == "__main__":
    main()
