"""Chaos: real builds, tokenizer packs and training runs SIGKILLed at random moments, run again, and
compared with a clean run. A kill takes the whole process group (the build, its workers, its Prefect
server), as a container kill or a lost machine would.

`make test` runs one round of each (kills inside commits and inside near-dedup for the build);
`make chaos` sets TOKENMILL_CHAOS_ROUNDS for more rounds and TOKENMILL_CHAOS_SEED for other moments.
Every assertion message carries the seed, so a failing round can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from flows.build_corpus import build_corpus
from pipeline.config import BuildConfig
from warehouse import stats
from warehouse.layout import DatasetPaths
from warehouse.read import scan
from warehouse.schema import DATASET_SOURCE

REPO = Path(__file__).resolve().parent.parent
ROUNDS = int(os.environ.get("TOKENMILL_CHAOS_ROUNDS", "1"))
SEED = int(os.environ.get("TOKENMILL_CHAOS_SEED", "11"))
# The opening of A Tale of Two Cities (Dickens, 1859; public domain): prose every filter keeps.
DICKENS = (REPO / "tests" / "fixtures" / "prose" / "tale_of_two_cities_opening.txt").read_text()


def child(tmp_path: Path, name: str, args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(tmp_path / f"prefect-{name}")}
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_when(process: subprocess.Popen, ready, delay: float, timeout: float = 600) -> bool:
    """SIGKILL the process group `delay` seconds after `ready()` holds; False if it ended first."""
    deadline = time.monotonic() + timeout
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    end = time.monotonic() + delay
    while time.monotonic() < end and process.poll() is None:
        time.sleep(0.01)
    killed = process.poll() is None
    try:
        os.killpg(process.pid, signal.SIGKILL)  # the group: workers and the Prefect server go too
    except ProcessLookupError:
        pass
    process.wait(60)
    return killed


def seconds_after(process: subprocess.Popen, ready, timeout: float = 600) -> float:
    """How long `process` runs on after `ready()` first holds (it must exit 0): the window a kill can land in."""
    deadline = time.monotonic() + timeout
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready(), "the clean run ended before its readiness signal: the chaos moments need a new signal"
    seen = time.monotonic()
    assert process.wait(timeout) == 0, process.stderr.read()[-2000:]
    return time.monotonic() - seen


def kill_inside(start, ready, delay: float, out: Path, what: str) -> None:
    """Kill the run that `start()` begins `delay` s after `ready()`; if it ended first (a fast run on a
    quiet machine), clear `out` and try again with half the delay, so that a kill always lands."""
    for _ in range(5):
        if kill_when(start(), ready, delay):
            return
        shutil.rmtree(out, ignore_errors=True)
        delay /= 2
    pytest.fail(f"{what}: five runs ended before their kill (last delay {delay * 2:.3f} s)")


# ---------------------------------------------------------------- build


@pytest.fixture(scope="module")
def build_inputs(tmp_path_factory) -> list[str]:
    """Crawl files, HTML pages, and JSONL with near-duplicates, so commits and near-dedup both have work."""
    folder = tmp_path_factory.mktemp("chaos-inputs")
    for part in range(3):
        lines = [json.dumps({"text": f"Entry {part}-{n} of the chaos test.\n" + DICKENS}) for n in range(40)]
        (folder / f"part{part}.jsonl").write_text("\n".join(lines) + "\n")
    return [str(REPO / "sample" / "warc"), str(REPO / "sample" / "html"), str(folder)]


def snapshot(ds: DatasetPaths) -> dict:
    """What two builds of the same inputs must agree on, whatever happened in between."""
    per_input = scan(ds, "stages").filter(pl.col("source") != DATASET_SOURCE)
    near = scan(ds, "stages").filter(pl.col("source") == DATASET_SOURCE)
    return {
        "docs": scan(ds).select("id", "source", "source_offset", "text_hash", "dup_cluster").sort("id").collect(),
        "rejects": scan(ds, "rejects").select("id", "source", "source_offset", "stage", "reason", "detail")
        .sort("id", "stage").collect(),
        "shards": scan(ds, "shards").select("source", "records", "docs", "rejects").sort("source").collect(),
        "stages": per_input.select("source", "stage", "records_in", "dropped").sort("source", "stage").collect(),
        "near_dedup_dropped": near.select(pl.col("dropped").sum()).collect().item(),
        "funnel": stats.funnel(ds),
    }


def assert_same(got: dict, want: dict, seed: int) -> None:
    for name, frame in want.items():
        if isinstance(frame, pl.DataFrame):
            assert got[name].equals(frame), f"seed {seed}: {name} differs from the clean build"
        else:
            assert got[name] == frame, f"seed {seed}: {name} differs from the clean build"


@pytest.fixture(scope="module")
def clean_build(build_inputs, tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("chaos-clean")
    build_corpus(build_inputs, warehouse=str(root), dataset="d", config=BuildConfig(workers=2), progress=False)
    reference = snapshot(DatasetPaths(str(root), "d"))
    assert reference["near_dedup_dropped"] > 0 and reference["rejects"].height > 0
    return reference


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_build_killed_inside_commits_and_inside_near_dedup_reruns_to_the_clean_build(
    build_inputs, clean_build, tmp_path, round_
):
    seed = SEED * 1000 + round_
    rng = random.Random(seed)
    ds = DatasetPaths(str(tmp_path / "wh"), "d")
    args = ["-m", "flows.cli", "build", *build_inputs, "--warehouse", ds.root, "--dataset", ds.name, "--workers", "2"]
    # A kill in the middle of committing (docs appended, marker not yet), then one in near-dedup.
    moments = [(lambda: Path(ds.docs, "_delta_log").exists(), rng.uniform(0, 1.5)),
               (lambda: Path(ds.base, "dedup").exists(), rng.uniform(0, 3.0))]
    killed = [kill_when(child(tmp_path, f"killed{n}", args), ready, delay) for n, (ready, delay) in enumerate(moments)]
    assert killed[0], f"seed {seed}: the first build ended before its kill"
    finish = child(tmp_path, "finish", args)
    _, stderr = finish.communicate(timeout=900)
    assert finish.returncode == 0, f"seed {seed}: the re-run failed: {stderr[-2000:]}"
    assert_same(snapshot(ds), clean_build, seed)


# ---------------------------------------------------------------- tokenize / pack and training


@pytest.fixture(scope="module")
def prose_file(shared_data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("chaos-text") / "shakespeare.txt"
    path.write_text((shared_data / "prose" / "tinyshakespeare.txt").read_text()[:400_000])
    return path


def tokenize_args(text: Path, out: Path) -> list[str]:
    return ["-m", "flows.cli", "tokenize", "--text", str(text), "--out", str(out), "--vocab-size", "512",
            "--workers", "2"]


@pytest.mark.shared
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_tokenizer_pack_killed_at_a_random_moment_reruns_to_the_same_files(prose_file, tmp_path, round_):
    seed = SEED * 1000 + round_
    clean, killed = tmp_path / "clean", tmp_path / "killed"

    def staging(out: Path):  # the pack's work begins: its staging folder exists until the final rename
        return lambda: any(tmp_path.glob(f".{out.name}.staging-*"))

    # The kill falls inside the first 60% of the clean run's time after that signal, whatever
    # start-up costs on a loaded machine; kill_inside makes sure it lands.
    window = seconds_after(child(tmp_path, "clean", tokenize_args(prose_file, clean)), staging(clean))
    delay = random.Random(seed).uniform(0.0, 0.6) * window
    kill_inside(lambda: child(tmp_path, "killed", tokenize_args(prose_file, killed)), staging(killed), delay,
                killed, f"seed {seed}")
    again = child(tmp_path, "again", tokenize_args(prose_file, killed))
    assert again.wait(600) == 0, f"seed {seed}: {again.stderr.read()[-2000:]}"
    for name in ("tokenizer.model", "train.bin", "train.idx", "val.bin", "val.idx"):
        assert (clean / name).read_bytes() == (killed / name).read_bytes(), f"seed {seed}: {name} differs"
    meta = [json.loads((d / "meta.json").read_text()) for d in (clean, killed)]
    assert {k: v for k, v in meta[0].items() if "time" not in k} == {k: v for k, v in meta[1].items() if "time" not in k}


TRAIN = ("from model.config import load_train_config; from model.train import train; import sys;"
         "cfg = load_train_config(None, preset='tiny', batch_size=8, lr=3e-3, warmup_steps=5, num_threads=1,"
         " log_interval=1, sample_tokens=8, eval_interval=3, model={'dropout': 0.1});"
         "train(sys.argv[1], sys.argv[2], cfg, resume=sys.argv[3] == 'resume', max_tokens=18 * 8 * 64)")


@pytest.mark.shared
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_training_run_killed_at_a_random_moment_resumes_to_the_uninterrupted_one(prose_file, tmp_path, round_):
    import torch

    from model.checkpoint import load_checkpoint

    seed = SEED * 1000 + round_
    tokens = tmp_path / "tokens"
    assert child(tmp_path, "tok", tokenize_args(prose_file, tokens)).wait(600) == 0
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    # The run folder appears when setup ends and training begins (model/train.py); the kill falls
    # within the first 70% of the clean run's time after that; kill_inside makes sure it lands.
    window = seconds_after(child(tmp_path, "whole", ["-c", TRAIN, str(tokens), str(whole), "fresh"]), whole.exists)
    delay = random.Random(seed).uniform(0.1, 0.7) * window
    kill_inside(lambda: child(tmp_path, "killed", ["-c", TRAIN, str(tokens), str(parts), "fresh"]), parts.exists,
                delay, parts, f"seed {seed}")
    resumed = child(tmp_path, "resumed", ["-c", TRAIN, str(tokens), str(parts), "resume"])
    assert resumed.wait(600) == 0, f"seed {seed}: {resumed.stderr.read()[-2000:]}"
    losses = [pl.read_parquet(d / "metrics.parquet")["train_loss"].drop_nulls().to_list() for d in (whole, parts)]
    assert losses[0] == losses[1], f"seed {seed}: the resumed run's losses differ"
    a, b = load_checkpoint(whole)["model"], load_checkpoint(parts)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a), f"seed {seed}: the resumed run's weights differ"
    samples = [(d / "samples.txt").read_text() for d in (whole, parts)]
    assert samples[0] == samples[1], f"seed {seed}: samples.txt differs"
