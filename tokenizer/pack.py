"""Encode documents on all cores and pack them into train.bin / val.bin (+ .idx), in input order.

The main process reads the input and writes the files; worker processes (each loading the model
once) encode. At most a few jobs are in flight at any time and results are written as soon as
they arrive in order, so memory stays flat however large the corpus is.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tokenizer.codec import Codec
from tokenizer.tokenfile import TokenFileWriter
from tokenizer.tokensdir import SPLITS, load_codec

# Text per job: large enough that inter-process overhead is noise, small enough that
# (2 x workers) jobs in flight stay a few tens of MB.
JOB_BYTES = 2_000_000


@dataclass
class Part:
    """Texts bound for one split. Whole documents by default; with `whole_documents=False`,
    `texts` is one piece of a long document that the next part continues unless `ends_document`.
    """

    split: str
    texts: list[str]
    n_bytes: int
    whole_documents: bool = True
    ends_document: bool = True


@dataclass
class SplitStats:
    docs: int = 0
    tokens: int = 0
    bytes: int = 0


@dataclass
class PackStats:
    splits: dict[str, SplitStats] = field(default_factory=lambda: {s: SplitStats() for s in SPLITS})


def default_workers() -> int:
    """The cores this process may run on (respects taskset / container CPU sets)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# fork where the platform has it: workers start at once and share the parent's loaded modules.
# spawn and forkserver re-import the caller's __main__ in every worker (for the `tokenmill` CLI that
# is Prefect and the whole pipeline: seconds and ~200 MB per worker). Forking a process with live
# threads (Delta Lake's and Arrow's pools) is safe here because a worker only ever runs NumPy and
# SentencePiece on plain Python strings it receives (never Arrow objects): it never touches a
# lock those threads use.
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"

_codec: Codec | None = None


def _load_model(model_proto: bytes) -> None:
    global _codec
    _codec = load_codec(model_proto=model_proto)


def _encode_job(job: list[Part]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [_codec.encode_documents(part.texts) for part in job]


def _ordered_map(fn: Callable, jobs: Iterable, workers: int, model_proto: bytes) -> Iterator[tuple]:
    """(job, fn(job)) in input order, with at most 2 x workers jobs read ahead."""
    if workers <= 1:
        _load_model(model_proto)
        for job in jobs:
            yield job, fn(job)
        return
    context = multiprocessing.get_context(START_METHOD)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_load_model, initargs=(model_proto,)) as pool:
        pending: deque[tuple[object, Future]] = deque()
        for job in jobs:
            pending.append((job, pool.submit(fn, job)))
            if len(pending) >= 2 * workers:
                done_job, future = pending.popleft()
                yield done_job, future.result()
        while pending:
            done_job, future = pending.popleft()
            yield done_job, future.result()


def pack(
    jobs: Iterable[list[Part]],
    model_proto: bytes,
    out_dir: Path,
    vocab_size: int,
    eos_id: int,
    workers: int | None = None,
    progress=None,
) -> PackStats:
    """Encode every job's parts and write `<out_dir>/{train,val}.{bin,idx}`; returns counts per split."""
    stats = PackStats()
    writers = {split: TokenFileWriter(out_dir / f"{split}.bin", vocab_size, eos_id) for split in SPLITS}
    try:
        for job, encoded in _ordered_map(_encode_job, jobs, workers or default_workers(), model_proto):
            for part, (flat, lengths) in zip(job, encoded):
                writer = writers[part.split]
                if part.whole_documents:
                    writer.add_documents(flat, lengths)
                else:
                    writer.write(flat)
                    if part.ends_document:
                        writer.end_document()
                stats.splits[part.split].bytes += part.n_bytes
                if progress is not None:
                    progress.update(part.n_bytes)
        for split, writer in writers.items():
            writer.commit()
            stats.splits[split].docs, stats.splits[split].tokens = writer.n_docs, writer.n_tokens
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    return stats
