"""A warehouse and inputs on object storage: a real S3 HTTP server (moto's server mode) on loopback,
credentials and endpoint from the environment only, as a user of any S3-compatible store sets them.

A build from s3:// inputs into an s3:// warehouse (the CLI, worker processes), a re-run that skips
the committed inputs, Polars reading the tables, and tokenize reading the dataset; the documents
are the same as those of the same build on a local warehouse."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parent.parent
WARCS = ["bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz", "bl-ukwa-2014_BL-20140325122341434_10resp_55revisit.warc.gz"]
BUCKET = "tokenmill-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3 endpoint on 127.0.0.1 with an empty bucket; the AWS_* variables point at it."""
    pytest.importorskip("moto.server", reason="moto[server] is in the dev extras")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    env = {"AWS_ACCESS_KEY_ID": "tokenmill", "AWS_SECRET_ACCESS_KEY": "tokenmill-secret", "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start (exit {server.poll()})") from None
                time.sleep(0.2)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            import fsspec

            fs = fsspec.filesystem("s3", skip_instance_cache=True)
            fs.mkdir(BUCKET)
            for name in WARCS:
                fs.put(str(REPO / "sample" / "warc" / name), f"{BUCKET}/crawl/{name}")
            yield fs
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def s3_build(s3):
    """The build through the CLI, as a user runs it: s3:// inputs and warehouse, two worker processes."""
    inputs = [f"s3://{BUCKET}/crawl/{name}" for name in WARCS]
    warehouse = f"s3://{BUCKET}/warehouse"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "flows.cli", "build", *inputs, "--warehouse", warehouse,
                          "--dataset", "web", "--workers", "2"], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    from warehouse.layout import DatasetPaths

    return DatasetPaths(warehouse, "web"), inputs


def test_a_build_writes_every_table_to_the_bucket_and_polars_reads_them(s3, s3_build, tmp_path):
    from flows.build_corpus import build_corpus
    from warehouse import stats
    from warehouse.read import scan

    ds, inputs = s3_build
    for table in ("docs", "rejects", "stats/shards", "stats/stages", "builds", "dedup"):
        assert s3.exists(f"{BUCKET}/warehouse/web/{table}"), table
    assert not (REPO / "s3:").exists()  # nothing went to a local folder named like the URL

    shards = scan(ds, "shards").collect()
    assert sorted(shards["source"]) == sorted(inputs)
    funnel = stats.funnel(ds)
    assert funnel.filter(pl.col("reason") == "exact_duplicate")["records"].sum() >= 55  # the recrawl's revisits

    local = build_corpus([str(REPO / "sample" / "warc" / name) for name in WARCS], warehouse=str(tmp_path),
                         dataset="web", progress=False)
    from warehouse.layout import DatasetPaths

    local_ds = DatasetPaths(str(tmp_path), "web")
    same = ["url", "source_offset", "text", "text_hash"]
    assert scan(ds).select(same).sort("url", "source_offset").collect().equals(
        scan(local_ds).select(same).sort("url", "source_offset").collect())
    assert local.docs_version is not None


def test_a_rerun_skips_the_committed_inputs(s3_build):
    from flows.build_corpus import build_corpus
    from warehouse.read import docs_version

    ds, inputs = s3_build
    before = docs_version(ds)
    again = build_corpus(inputs, warehouse=ds.root, dataset=ds.name, progress=False)
    assert (again.inputs, again.inputs_skipped) == (len(inputs), len(inputs))
    assert docs_version(ds) == before


def test_tokenize_reads_the_dataset_from_the_bucket(s3_build, tmp_path):
    from tokenizer.cli import tokenize_dataset
    from tokenizer.tokenfile import TokenFile
    from warehouse.read import scan

    ds, _ = s3_build
    result = tokenize_dataset(f"{ds.root}/{ds.name}", out=tmp_path / "tokens", vocab_size=500, progress=False)
    docs = scan(ds).select(pl.len()).collect().item()
    assert result.meta["train_docs"] + result.meta["val_docs"] == docs
    assert TokenFile.open(tmp_path / "tokens" / "train.bin").n_tokens == result.meta["train_tokens"] > 0


def test_train_after_build_trains_from_the_bucket_and_uploads_the_run(s3, s3_build, tmp_path, monkeypatch):
    # Token files are memory-mapped and a run checkpoints as it goes: both are made in a local cache
    # folder standing in for their place in the bucket, and the finished run is uploaded there.
    from flows.train_after_build import train_after_build

    ds, _ = s3_build
    monkeypatch.setenv("TOKENMILL_CACHE", str(tmp_path / "cache"))
    done = train_after_build(f"{ds.root}/{ds.name}", vocab_size=500, max_seconds=1,
                             overrides={"batch_size": 4, "eval_interval": 2, "eval_tokens": 2048, "sample_tokens": 0})
    assert done.tokens.out == tmp_path / "cache" / "s3" / BUCKET / "warehouse" / ds.name / "tokens" / done.tokens.tokenizer_id
    run_id = done.run.run_dir.name
    assert done.run.run_dir == tmp_path / "cache" / "s3" / BUCKET / "warehouse" / "runs" / run_id
    uploaded = {p.rsplit("/", 1)[1] for p in s3.find(f"{BUCKET}/warehouse/runs/{run_id}")}
    assert {"checkpoint.pt", "metrics.parquet", "lineage.json", "tokenizer.model"} <= uploaded
    with s3.open(f"{BUCKET}/warehouse/runs/{run_id}/checkpoint.pt", "rb") as f:
        assert f.read() == (done.run.run_dir / "checkpoint.pt").read_bytes()
    assert not (REPO / "s3:").exists()


def test_on_s3_the_writer_lease_is_won_by_exactly_one_of_two_racing_writers(s3):
    # Each write of the lease is a conditional PUT: two writers that both read it absent (or both
    # read the same expired lease) cannot both create (or take over) it.
    import json

    from warehouse.lock import _S3Lease, _holder

    path = f"{BUCKET}/race/d/_writer.lease"
    a, b = _S3Lease(s3, path), _S3Lease(s3, path)
    (_, seen_a), (_, seen_b) = a.read(), b.read()
    assert seen_a is seen_b is None
    assert a.swap(_holder("a"), seen_a) is not None
    assert b.swap(_holder("b"), seen_b) is None  # b read it absent, but a created it since
    assert json.loads(s3.cat(path))["what"] == "a"

    s3.pipe(path, json.dumps({**_holder("dead"), "renewed": 0}).encode())  # a holder that died
    (expired, seen_a), (_, seen_b) = a.read(), b.read()
    assert expired["what"] == "dead" and seen_a == seen_b
    assert b.swap(_holder("b"), seen_b) is not None
    assert a.swap(_holder("a"), seen_a) is None  # the lease a saw expired is b's now
    assert json.loads(s3.cat(path))["what"] == "b"


def test_on_s3_of_four_builds_starting_together_one_holds_the_lock(s3, tmp_path):
    # Four processes released at one moment ask for the same dataset's lock without waiting.
    script = ("import sys, time; from warehouse.layout import DatasetPaths; from warehouse.lock import writer_lock, DatasetBusy\n"
              "go = float(sys.argv[1])\n"
              "while time.time() < go: pass\n"
              "try:\n"
              f"    with writer_lock(DatasetPaths('s3://{BUCKET}/race4', 'd'), 'racer'):\n"
              "        print('won', flush=True); time.sleep(3)\n"
              "except DatasetBusy:\n"
              "    print('busy', flush=True)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    go = time.time() + 5  # after every process has imported what it needs
    racers = [subprocess.Popen([sys.executable, "-c", script, str(go)], env=env, cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outcomes = sorted(p.communicate(timeout=120)[0].strip() for p in racers)
    assert outcomes == ["busy", "busy", "busy", "won"], [p.stderr for p in racers]
