"""One writer per dataset, tested with real processes: a second build waits or fails with one
line, a SIGKILLed holder never keeps the lock, and two builds at once give one clean dataset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tests.lock_holder import lock_held_elsewhere
from warehouse.layout import DatasetPaths
from warehouse.lock import DatasetBusy, writer_lock
from warehouse.read import scan

REPO = Path(__file__).resolve().parent.parent
INPUTS = [str(REPO / "sample" / "warc" / "bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz")]


def cli(tmp_path: Path, name: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(tmp_path / f"prefect-{name}")}
    return subprocess.Popen([sys.executable, "-m", "flows.cli", *args], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def build_args(ds: DatasetPaths, *extra: str) -> list[str]:
    return ["build", *INPUTS, "--warehouse", ds.root, "--dataset", ds.name, "--workers", "1", *extra]


def test_a_sigkilled_holder_does_not_keep_the_lock(tmp_path):
    ds = DatasetPaths(str(tmp_path), "d")
    with lock_held_elsewhere(ds, "doomed") as holder:
        started = time.monotonic()
        with pytest.raises(DatasetBusy, match=r"being written by doomed \(pid \d+ .*after waiting 1 s"):
            with writer_lock(ds, "rival", wait=1):
                pass
        assert time.monotonic() - started >= 1
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        with writer_lock(ds, "next", wait=5):
            with writer_lock(ds, "the same process again"):  # re-entrant: a process may nest its own takes
                pass


def waiting_for(process: subprocess.Popen, lock: str) -> bool:
    """Whether the process has the lock file open: from then on it polls for the lock (warehouse/lock.py)."""
    try:
        fds = list(Path(f"/proc/{process.pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd) == lock:
                return True
        except OSError:
            pass
    return False


def test_two_concurrent_builds_of_one_dataset_give_one_clean_dataset(tmp_path):
    ds = DatasetPaths(str(tmp_path / "wh"), "d")
    lock = os.path.realpath(os.path.join(ds.base, "_writer.lock"))
    with writer_lock(ds, "test holder"):
        # Started together to pay the CLI's start-up once: one refuses at once, two wait.
        refused = cli(tmp_path, "refused", *build_args(ds))
        builds = [cli(tmp_path, f"b{i}", *build_args(ds, "--wait", "600")) for i in range(2)]
        try:
            _, stderr = refused.communicate(timeout=300)
            assert refused.returncode == 2
            assert len(stderr.strip().splitlines()) == 1 and "being written by test holder" in stderr
            # Release only once both wait on the lock, so that they race for it.
            deadline = time.monotonic() + 300
            while not all(waiting_for(b, lock) for b in builds):
                assert all(b.poll() is None for b in builds), [b.communicate() for b in builds if b.poll() is not None]
                assert time.monotonic() < deadline, "the builds did not reach the lock within 300 s"
                time.sleep(0.05)
        except BaseException:
            for b in builds:
                b.kill()
                b.wait()
            raise
    outputs = [b.communicate(timeout=600) for b in builds]
    assert [b.returncode for b in builds] == [0, 0], outputs
    skipped = sorted(int(out.split(" inputs (")[1].split(" already")[0]) for out, _ in outputs)
    assert skipped == [0, 1]  # one built the input, the other found it committed

    shards = scan(ds, "shards").collect()
    assert sorted(shards["source"]) == sorted(INPUTS)
    rows = pl.concat([scan(ds, t).select("source", "source_offset").collect() for t in ("docs", "rejects")])
    assert rows.is_duplicated().sum() == 0
    assert rows.height == shards["records"].sum()
    assert scan(ds).select(pl.col("text_hash").is_duplicated().sum()).collect().item() == 0


def test_on_a_remote_file_system_a_lease_not_renewed_is_taken_over_and_a_live_one_is_not():
    import json as _json

    import fsspec

    ds = DatasetPaths("memory://chaos-lease", "d")
    fs = fsspec.filesystem("memory")
    lease = "/chaos-lease/d/_writer.lease"
    fs.makedirs("/chaos-lease/d", exist_ok=True)
    rival = {"token": "rival", "what": "a build elsewhere", "host": "other", "pid": 1, "since": "then"}
    fs.pipe(lease, _json.dumps({**rival, "renewed": time.time()}).encode())
    with pytest.raises(DatasetBusy, match="a build elsewhere"):
        with writer_lock(ds, "me"):
            pass
    fs.pipe(lease, _json.dumps({**rival, "renewed": time.time() - 3600}).encode())  # its holder died
    with writer_lock(ds, "me"):
        assert _json.loads(fs.cat(lease))["what"] == "me"
    assert not fs.exists(lease)
