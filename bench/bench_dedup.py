"""Benchmark of near-duplicate removal: tokenmill against datatrove's MinHash, and a 10M-document scale run.

    python -m bench.bench_dedup [--quick] [--pairs N] [--scale-docs N]

Per core (BENCH.md's method): each run is a subprocess pinned with `taskset -c 0` and one thread
for OpenMP, MKL, Polars and Rayon, on the same documents; tokenmill (A) and datatrove (B) alternate
A B A B for `--pairs` pairs and the table gives the median ratio with its min-max.

- signatures: tokenmill's batch `signatures()` (normalise + shingle + SHA-1 + 128 permutations)
  against datasketch `MinHash(num_perm=128)` fed one document at a time (with shingling), and
  against datatrove's `MinhashDedupSignature` stage (14 x 8 = 112 hashes, spaCy word splitting);
- whole dedup: `dedup_dataset` (the one orchestration of the stage, which production runs: in
  process on threads, or inside the near-dedup flow with Prefect tasks) on a warehouse holding the documents (signatures, bands, exact
  Jaccard check, union-find, moving the removed to rejects) against datatrove's four stages
  Signature -> Buckets -> Cluster -> Filter with `MinhashConfig()` defaults, reading and
  writing JSONL. Its Buckets stage asserts tasks % 14 == 0, so it runs 14 tasks on 1 worker.
- recall and precision of both against brute-force exact Jaccard (see bench.dedup_truth).
- scale: 10 million synthetic signature rows (band keys with planted duplicate groups) through
  per-band grouping, union-find and the keeper rule, in a subprocess whose peak RSS is reported.

datatrove runs from its own venv (`bench/setup_datatrove.sh`, made on first use): it pins
trafilatura < 1.12. Without it the table says so and the rest still runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import peak_rss_bytes

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "dedup.md"
BENCH_VENV = REPO / ".venv-bench"
SHARED = Path(os.environ.get("TOKENMILL_SHARED_DATA", REPO.parent / "shared" / "data"))

ONE_CORE_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "POLARS_MAX_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}

DATATROVE_SCRIPT = r'''
import glob, gzip, json, sys, time
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter

inp, work = sys.argv[1], sys.argv[2]
cfg = MinhashConfig()
seconds = {}

def run(name, pipeline, tasks=1):
    start = time.perf_counter()
    LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1, logging_dir=f"{work}/logs/{name}").run()
    seconds[name] = time.perf_counter() - start

run("signatures", [JsonlReader(inp), MinhashDedupSignature(output_folder=f"{work}/sigs", config=cfg)])
run("buckets", [MinhashDedupBuckets(input_folder=f"{work}/sigs", output_folder=f"{work}/buckets", config=cfg)], tasks=cfg.num_buckets)
run("cluster", [MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids", config=cfg)])
run("filter", [JsonlReader(inp), MinhashDedupFilter(input_folder=f"{work}/remove_ids", exclusion_writer=JsonlWriter(f"{work}/removed")), JsonlWriter(f"{work}/kept")])
removed = []
for path in glob.glob(f"{work}/removed/*"):
    with gzip.open(path, "rt") as f:
        removed += [json.loads(line)["id"] for line in f]
print(json.dumps({"seconds": seconds, "removed": removed}))
'''


# ---------------------------------------------------------------- corpus


def build_corpus(shared: Path, quick: bool) -> list[dict]:
    """Real documents with real and made near-duplicates: {id, text, source} in a fixed order."""
    sys.path.insert(0, str(REPO))
    from bench.dedup_truth import gutenberg_docs, near_copies, paragraph_chunks, warc_pages

    books = [(name.split("#")[0], text) for name, text in gutenberg_docs(shared / "prose" / "gutenberg", 500)]
    pages = []
    for name in ("bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz", "bl-ukwa-2014_BL-20140325122341434_10resp_55revisit.warc.gz",
                 "wget-2024_dolma-sample-0000_22resp.warc.gz", "cc-main-2020-34_16pages.warc.gz"):
        pages += [(name, text) for _, text in warc_pages(shared / "warc" / name)]
    prose = paragraph_chunks((shared / "prose" / "tinyshakespeare.txt").read_text(), 300)
    prose += paragraph_chunks((shared / "prose" / "wikitext2_valid.txt").read_text(), 300)
    if quick:  # fewer documents, the same kinds of near-duplicates
        books, prose = books[::2], prose[::4]
    copied = prose[::3]
    docs = books + pages + [("prose", t) for t in prose] + [("prose-copies", t) for t in near_copies(copied, seed=7)]
    return [{"id": f"d{i:06d}", "text": text, "source": source} for i, (source, text) in enumerate(docs)]


def write_jsonl(docs: list[dict], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "docs.jsonl", "w", encoding="utf-8") as f:
        for doc in docs:
            f.write(json.dumps({"id": doc["id"], "text": doc["text"]}) + "\n")
    return folder


# ---------------------------------------------------------------- workers (run in pinned subprocesses)


def worker_tokenmill(corpus: Path, work: Path) -> dict:
    """Whole dedup of the corpus in a fresh warehouse; the docs table write is not timed."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from pipeline.config import DedupConfig
    from pipeline.dedup import dedup_dataset
    from warehouse.layout import DatasetPaths
    from warehouse.read import scan
    from warehouse.schema import REJECTS_SCHEMA, docs_schema

    from pipeline.dedup.minhash import shingle_hashes, signatures

    # Compiled kernels load from numba's cache on first call, like an import: outside the clock
    # (and, loaded, they sign everything: `minhash.compiled`).
    signatures(["warm up the kernels"], use_kernels=True)
    shingle_hashes(["warm up the kernels"], use_kernels=True)
    docs = [json.loads(line) for line in open(corpus / "docs.jsonl", encoding="utf-8")]
    rows = [{"id": d["id"], "source": f"shard-{i // 500:03d}", "source_offset": i, "text": d["text"]} for i, d in enumerate(docs)]
    ds = DatasetPaths(root=str(work), name="bench")
    write_deltalake(ds.docs, pa.Table.from_pylist(rows, schema=docs_schema([])))
    write_deltalake(ds.rejects, REJECTS_SCHEMA.empty_table())
    start = time.perf_counter()
    report = dedup_dataset(ds, DedupConfig(), progress=False)
    seconds = time.perf_counter() - start
    removed = scan(ds, "rejects").select("id").collect()["id"].to_list()
    return {"seconds": {"total": seconds, **report.seconds}, "removed": removed}


def worker_signatures(corpus: Path, which: str) -> dict:
    """Signatures only: tokenmill's batch path, or datasketch one document at a time."""
    import pyarrow as pa

    texts = [json.loads(line)["text"] for line in open(corpus / "docs.jsonl", encoding="utf-8")]
    if which == "tokenmill":
        from pipeline.dedup.minhash import signatures

        signatures(texts[:10], use_kernels=True)  # compile (or load the numba cache) outside the clock
        start = time.perf_counter()
        array = pa.array(texts, pa.large_string())
        for i in range(0, len(texts), 2048):
            signatures(array[i : i + 2048])
        return {"seconds": time.perf_counter() - start}
    from datasketch import MinHash

    from pipeline.dedup.shingles import shingle_set

    start = time.perf_counter()
    for text in texts:
        m = MinHash(num_perm=128, seed=1)
        m.update_batch([s.encode("utf-8") for s in shingle_set(text)])
    return {"seconds": time.perf_counter() - start}


def worker_scale_store(n_docs: int, work: Path) -> dict:
    """Write a signature store of n_docs synthetic rows (band keys with planted near-duplicates)."""
    import numpy as np
    import pyarrow as pa

    from pipeline.config import DedupConfig
    from pipeline.dedup.store import Manifest, SignatureParams, signature_schema, write_manifest, write_shard
    from warehouse.layout import DatasetPaths

    cfg = DedupConfig()
    params = SignatureParams.from_config(cfg)
    ds = DatasetPaths(root=str(work), name="scale")
    schema = signature_schema(params)
    rng = np.random.default_rng(0)
    shard_docs, shards = 250_000, {}
    start = time.perf_counter()
    for s, first in enumerate(range(0, n_docs, shard_docs)):
        n = min(shard_docs, n_docs - first)
        keys = rng.integers(-(2**63), 2**63 - 1, size=(n, params.bands), dtype=np.int64)
        # A tenth of the documents copy a random earlier row of their shard in a random subset of
        # bands: near-duplicates that LSH would pair through one to all bands.
        dup = rng.random(n) < 0.1
        dup[0] = False
        dup_rows = np.flatnonzero(dup)
        originals = (rng.random(len(dup_rows)) * dup_rows).astype(np.int64)
        shared_bands = rng.random((len(dup_rows), params.bands)) < rng.random((len(dup_rows), 1))
        keys[dup_rows] = np.where(shared_bands, keys[originals], keys[dup_rows])
        table = pa.table(
            {
                "id": pa.array([f"s{s:03d}d{i:07d}" for i in range(n)], pa.string()),
                "source": pa.array([f"shard-{s:03d}"] * n, pa.string()),
                "quality_score": pa.array(rng.random(n, dtype=np.float32)),
                "shingles": pa.array(np.full(n, 100, np.int32)),
                **{f"band_{b:02d}": pa.array(keys[:, b]) for b in range(params.bands)},
                "signature": pa.nulls(n, schema.field("signature").type),
            },
            schema=schema,
        )
        shard = f"synthetic{s:03d}"
        write_shard(ds, shard, table)
        shards[shard] = {"source": f"shard-{s:03d}", "docs": n, "docs_version": 0}
    write_manifest(ds, Manifest(params, shards))
    return {"seconds": time.perf_counter() - start}


def worker_scale(work: Path) -> dict:
    """Group, union-find and keeper rule over the synthetic store; peak RSS of this process in bytes."""
    from pipeline.config import DedupConfig
    from pipeline.dedup.candidates import group_band, read_pairs
    from pipeline.dedup.stage import store_rows
    from pipeline.dedup.store import SignatureParams, read_manifest
    from pipeline.dedup.unionfind import choose_keepers, cluster_labels, clustered_docs
    from warehouse.layout import DatasetPaths

    cfg = DedupConfig()
    params = SignatureParams.from_config(cfg)
    ds = DatasetPaths(root=str(work), name="scale")
    manifest = read_manifest(ds)
    start = time.perf_counter()
    paths = [group_band(ds, band) for band in range(params.bands)]
    grouping = time.perf_counter() - start
    start = time.perf_counter()
    pairs = read_pairs(paths)
    members = clustered_docs(cluster_labels(pairs, manifest.documents))
    members = members.join(store_rows(manifest, ds, members["doc"].to_numpy(), ["id", "quality_score"]), on="doc")
    kept, removed = choose_keepers(members.with_columns(present=True))
    clustering = time.perf_counter() - start
    return {
        "docs": manifest.documents,
        "pairs": int(len(pairs)),
        "clusters": kept.height,
        "removed": removed.height,
        "seconds": {"grouping": grouping, "cluster": clustering},
        "peak_rss": peak_rss_bytes(),
    }


# ---------------------------------------------------------------- driver


def _pinned(cmd: list[str]) -> list[str]:
    return (["taskset", "-c", "0"] if shutil.which("taskset") else []) + cmd


def _run_json(cmd: list[str], pin: bool = True) -> dict:
    env = {**os.environ, **(ONE_CORE_ENV if pin else {}), "PYTHONPATH": str(REPO)}
    out = subprocess.run(_pinned(cmd) if pin else cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _self(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.bench_dedup", *args]


def ensure_datatrove() -> Path | None:
    python = BENCH_VENV / "bin" / "python"
    try:
        subprocess.run(["bash", str(REPO / "bench" / "setup_datatrove.sh"), str(BENCH_VENV)], check=True,
                       capture_output=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"datatrove unavailable ({exc}); its columns are left out", file=sys.stderr)
        return None
    return python


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}x ({min(values):.1f}-{max(values):.1f})"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the corpus, 1M-row scale run")
    parser.add_argument("--pairs", type=int, default=3, help="A B pairs per comparison (>= 3)")
    parser.add_argument("--scale-docs", type=int, default=None, help="rows of the scale run (default 10M, 1M quick)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:  # inside a pinned subprocess
        corpus, work = Path(args.corpus or "."), Path(args.work or ".")
        if args.worker == "dedup":
            result = worker_tokenmill(corpus, work)
        elif args.worker == "scale-store":
            result = worker_scale_store(args.scale_docs, work)
        elif args.worker == "scale":
            result = worker_scale(work)
        else:
            result = worker_signatures(corpus, args.worker)
        print(json.dumps(result))
        return ""

    sys.path.insert(0, str(REPO))
    from bench.dedup_truth import score, similar_pairs

    scale_docs = args.scale_docs or (1_000_000 if args.quick else 10_000_000)
    docs = build_corpus(SHARED, args.quick)
    n_docs, n_words = len(docs), sum(len(d["text"].split()) for d in docs)
    truth = similar_pairs([d["text"] for d in docs])
    position = {d["id"]: i for i, d in enumerate(docs)}
    datatrove = ensure_datatrove()
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-dedup-") as tmp:
        tmp = Path(tmp)
        corpus = write_jsonl(docs, tmp / "corpus")
        _run_json(_self("--worker", "tokenmill", "--corpus", str(corpus)))  # warm the numba cache

        sig_ratios, ds_ratios, sig_tm, sig_ds = [], [], [], []
        for _ in range(args.pairs):
            a = _run_json(_self("--worker", "tokenmill", "--corpus", str(corpus)))["seconds"]
            b = _run_json(_self("--worker", "datasketch", "--corpus", str(corpus)))["seconds"]
            sig_tm.append(n_docs / a)
            sig_ds.append(n_docs / b)
            ds_ratios.append(b / a)

        whole_tm, whole_dt, whole_ratios, dt_sig, tm_stage = [], [], [], [], []
        removed_tm = removed_dt = None
        for k in range(args.pairs):
            work = tmp / f"tm{k}"
            a = _run_json(_self("--worker", "dedup", "--corpus", str(corpus), "--work", str(work)))
            whole_tm.append(n_docs / a["seconds"]["total"])
            removed_tm = a["removed"]
            if datatrove is not None:
                work = tmp / f"dt{k}"
                script = tmp / "datatrove_minhash.py"
                script.write_text(DATATROVE_SCRIPT)
                b = _run_json([str(datatrove), str(script), str(corpus), str(work)])
                total_b = sum(b["seconds"].values())
                whole_dt.append(n_docs / total_b)
                dt_sig.append(n_docs / b["seconds"]["signatures"])
                tm_stage.append(n_docs / a["seconds"]["signatures"])
                sig_ratios.append(b["seconds"]["signatures"] / a["seconds"]["signatures"])
                whole_ratios.append(total_b / a["seconds"]["total"])
                removed_dt = b["removed"]
            shutil.rmtree(tmp / f"tm{k}", ignore_errors=True)

        all_cores = []
        for k in range(args.pairs):  # the same dedup on every core (signing threads, Polars threads)
            a = _run_json(_self("--worker", "dedup", "--corpus", str(corpus), "--work", str(tmp / f"all{k}")), pin=False)
            all_cores.append(n_docs / a["seconds"]["total"])
            shutil.rmtree(tmp / f"all{k}", ignore_errors=True)

        quality_tm = score(truth, [position[i] for i in removed_tm])
        quality_dt = score(truth, [position[i] for i in removed_dt]) if removed_dt is not None else None
        _run_json(_self("--worker", "scale-store", "--scale-docs", str(scale_docs), "--work", str(tmp / "scale")), pin=False)
        scale = _run_json(_self("--worker", "scale", "--work", str(tmp / "scale")), pin=False)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    med = statistics.median
    lines += [
        "# Near-duplicate removal benchmark",
        "",
        f"Machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}. Per core: `taskset -c 0`, one thread "
        f"(OMP/MKL/Polars/Rayon), {args.pairs} alternating pairs, median (min-max).",
        f"Corpus: {n_docs:,} real documents, {n_words:,} words (Gutenberg chapters with Latin-1 twins and an older edition, "
        f"gov.uk crawl + recrawl, dolma/CC pages, Shakespeare and WikiText chunks with near-copies); "
        f"{quality_tm.true_pairs} pairs with exact J >= 0.85.",
        f"Command: `python -m bench.bench_dedup{' --quick' if args.quick else ''}`",
        "",
        "| measure | tokenmill | peer | tokenmill / peer |",
        "|---|---|---|---|",
        f"| signatures, docs/s per core (vs datasketch one doc at a time, 128 perm) | {med(sig_tm):,.0f} | {med(sig_ds):,.0f} | {_spread(ds_ratios)} |",
    ]
    if whole_dt:
        lines += [
            f"| signature stage (read docs, sign, write), docs/s per core (vs datatrove MinhashDedupSignature, 112 hashes) | {med(tm_stage):,.0f} | {med(dt_sig):,.0f} | {_spread(sig_ratios)} |",
            f"| whole dedup, docs/s per core (vs datatrove 4 stages) | {med(whole_tm):,.0f} | {med(whole_dt):,.0f} | {_spread(whole_ratios)} |",
            f"| recall (pairs J >= 0.85 with at most one kept) | {quality_tm.recall:.3f} | {quality_dt.recall:.3f} | |",
            f"| precision (removed docs with a twin J >= 0.7) | {quality_tm.precision:.3f} | {quality_dt.precision:.3f} | |",
            f"| documents removed | {quality_tm.removed} | {quality_dt.removed} | |",
        ]
    else:
        lines += [
            f"| whole dedup, docs/s per core | {med(whole_tm):,.0f} | datatrove not installed | |",
            f"| recall / precision | {quality_tm.recall:.3f} / {quality_tm.precision:.3f} | | |",
        ]
    gib = 1024**3
    lines += [
        "",
        f"All cores ({os.cpu_count()}), tokenmill whole dedup: {med(all_cores):,.0f} docs/s (median of {len(all_cores)}).",
        "",
        f"Scale run (synthetic band keys, 14 bands, 10 % planted near-duplicates; all cores): {scale['docs']:,} documents, "
        f"{scale['pairs']:,} candidate pairs, {scale['clusters']:,} clusters, {scale['removed']:,} removed. "
        f"Grouping {scale['seconds']['grouping']:.0f} s, union-find + keepers {scale['seconds']['cluster']:.0f} s; "
        f"peak RSS of that process {scale['peak_rss'] / gib:.2f} GiB (the store is written by another process).",
    ]
    table = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table)
    print(table)
    return table


if __name__ == "__main__":
    main()
