"""One writer per dataset: a build (or a near-dedup run) holds its dataset's lock while it writes.

Two builds of one dataset at once would each miss the other's documents in exact dedup and each
commit an input the other is committing. A second writer therefore waits for the lock (up to
`wait` seconds) or fails with one line naming the holder.

- A local warehouse: an advisory `flock` on `<dataset>/_writer.lock`. The kernel releases it when
  the holding process ends, however it ends (SIGKILL, out of memory, power cut of a container),
  so a crashed holder never keeps it. The file says who holds it, for the message.
- Any other fsspec file system (`s3://`, `gs://`): a lease file `<dataset>/_writer.lease` that the
  holder renews every LEASE_SECONDS / 4 from a thread; a lease not renewed for LEASE_SECONDS is a
  crashed holder's and is taken over. On S3 (and S3-compatible stores) every write of the lease is a
  conditional PUT — create only if absent (If-None-Match), take over or renew only if unchanged
  since read (If-Match on its ETag) — so of two writers racing for it exactly one wins. Elsewhere the
  store gives no such primitive: two writers starting within the same second can both win; the lease
  is re-read before every renewal, and a writer that finds another's token there stops renewing and
  fails when its block ends.

The lock is re-entrant within a process (a build's near-dedup and decontamination re-enter it).
Under Prefect a build takes its dataset's concurrency slot first, then this lock: one order for
the CLI and deployments alike (flows/dataset_limit.py), so two writers queue and never deadlock.
Readers (Polars, tokenize) take no lock: Delta versions give them a consistent table.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

import fsspec
from fsspec.asyn import sync
from fsspec.implementations.local import LocalFileSystem

from warehouse.errors import TokenmillError
from warehouse.layout import DatasetPaths, join

LEASE_SECONDS = 60.0
POLL_SECONDS = 0.5
_HELD: dict[str, int] = {}  # datasets this process holds the lock of, and how many times


class DatasetBusy(TokenmillError):
    """Another process holds the dataset's writer lock; the message is one line naming it."""


def _holder(what: str) -> dict:
    return {"token": uuid.uuid4().hex, "what": what, "host": socket.gethostname(), "pid": os.getpid(),
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds"), "renewed": time.time()}


def _describe(ds: DatasetPaths, info: dict | None, wait: float) -> str:
    who = (f"{info.get('what', 'a build')} (pid {info.get('pid')} on {info.get('host')}, since {info.get('since')})"
           if info else "another process")
    waited = f" after waiting {wait:g} s" if wait > 0 else ""
    return f"dataset {ds.base} is being written by {who}{waited}; run again when it ends, or pass --wait SECONDS"


@contextmanager
def writer_lock(ds: DatasetPaths, what: str, wait: float = 0.0):
    """Hold the dataset's writer lock inside the block; raise DatasetBusy if it is not free within `wait` s."""
    if _HELD.get(ds.base):
        _HELD[ds.base] += 1
        try:
            yield
        finally:
            _HELD[ds.base] -= 1
        return
    fs, base = fsspec.core.url_to_fs(ds.base)
    fs.makedirs(base, exist_ok=True)
    holder = _holder(what)
    hold = (_flock(ds, os.path.join(base, "_writer.lock"), holder, wait) if isinstance(fs, LocalFileSystem)
            else _lease(ds, fs, join(base, "_writer.lease"), holder, wait))
    with hold:
        _HELD[ds.base] = 1
        try:
            yield
        finally:
            del _HELD[ds.base]


@contextmanager
def _flock(ds: DatasetPaths, path: str, holder: dict, wait: float):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DatasetBusy(_describe(ds, _read_json(path), wait)) from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_json(path: str, fs=None) -> dict | None:
    try:
        if fs is None:
            with open(path, "rb") as f:
                return json.loads(f.read() or b"null")
        with fs.open(path, "rb") as f:
            return json.loads(f.read() or b"null")
    except (OSError, ValueError):
        return None


class _PlainLease:
    """The lease file on a store without conditional writes: last writer wins, checked after a pause."""

    def __init__(self, fs, path: str):
        self.fs, self.path = fs, path

    def read(self) -> tuple[dict | None, object]:
        info = _read_json(self.path, self.fs)
        return info, info

    def swap(self, info: dict, seen: object) -> object | None:
        """Write `info`; the new version's tag, or None when a rival's write is there instead."""
        with self.fs.open(self.path, "wb") as f:
            f.write(json.dumps(info).encode())
        time.sleep(POLL_SECONDS)  # a rival that wrote in the same moment is seen now
        current = _read_json(self.path, self.fs)
        return current if (current or {}).get("token") == info["token"] else None

    def remove(self) -> None:
        self.fs.rm(self.path)


class _S3Lease:
    """The lease object on S3, each write one compare-and-swap on its ETag."""

    def __init__(self, fs, path: str):
        self.fs = fs
        self.bucket, self.key, _ = fs.split_path(path)

    def read(self) -> tuple[dict | None, str | None]:
        try:
            body, etag = sync(self.fs.loop, self._get)  # body and ETag of one version, in one request
        except FileNotFoundError:
            return None, None
        try:
            return json.loads(body or b"null"), etag
        except ValueError:
            return None, etag  # not ours to read, but ours to replace if it is still this one

    async def _get(self) -> tuple[bytes, str]:
        got = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=self.key)
        async with got["Body"] as body:
            return await body.read(), got["ETag"]

    def swap(self, info: dict, seen: str | None) -> str | None:
        condition = {"IfNoneMatch": "*"} if seen is None else {"IfMatch": seen}
        try:
            put = self.fs.call_s3("put_object", Bucket=self.bucket, Key=self.key, Body=json.dumps(info).encode(),
                                  **condition)
        except OSError as exc:
            if isinstance(exc, FileExistsError) or _precondition_failed(exc):
                return None  # a rival created or rewrote it since we read it
            raise
        return put["ETag"]

    def remove(self) -> None:
        self.fs.call_s3("delete_object", Bucket=self.bucket, Key=self.key)


def _precondition_failed(exc: OSError) -> bool:
    code = getattr(exc.__cause__, "response", {}).get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


def _lease_store(fs, path: str):
    try:
        from s3fs import S3FileSystem
    except ImportError:  # s3fs is only needed for s3:// warehouses
        return _PlainLease(fs, path)
    return _S3Lease(fs, path) if isinstance(fs, S3FileSystem) else _PlainLease(fs, path)


@contextmanager
def _lease(ds: DatasetPaths, fs, path: str, holder: dict, wait: float):
    store = _lease_store(fs, path)
    deadline = time.monotonic() + wait
    while True:
        info, seen = store.read()
        if info is None or time.time() - float(info.get("renewed", 0)) > LEASE_SECONDS:
            # Absent, unreadable or not renewed in time (its holder died): ours if nobody beats us to it.
            tag = store.swap(holder, seen)
            if tag is not None:
                break
        elif time.monotonic() >= deadline:
            raise DatasetBusy(_describe(ds, info, wait))
        time.sleep(POLL_SECONDS)

    stop = threading.Event()
    lost: list[dict | None] = []

    def renew() -> None:
        nonlocal tag
        while not stop.wait(LEASE_SECONDS / 4):
            current, seen = store.read()
            if (current or {}).get("token") != holder["token"]:
                lost.append(current)
                return
            tag = store.swap({**holder, "renewed": time.time()}, seen)
            if tag is None:
                lost.append(store.read()[0])
                return

    thread = threading.Thread(target=renew, name="dataset-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        if not lost:
            store.remove()
    if lost:
        raise DatasetBusy(f"another writer took over the lease of {ds.base} during this run: {lost[0]}")
