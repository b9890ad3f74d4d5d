"""Benchmark decontamination: documents that share a long word n-gram with an evaluation set are removed.

    index = NgramIndex.build(["mmlu_test.jsonl", "hellaswag.txt"], n=13)   # once
    report = decontaminate_dataset(ds, index)                               # docs -> rejects

N-grams are the near-dedup shingles (`pipeline.dedup.shingles`): lowercased, punctuation and
whitespace folded, n consecutive words, hashed to the 64-bit SHA-1 prefix near dedup uses. The
index is a sorted numpy array of the distinct hashes of every evaluation n-gram, with the number
of the file each came from (uint16) beside it: 10 bytes per n-gram, so a 100 MB evaluation set
(~17 M words) costs ~170 MB; building it needs about twice that (each file's hashes are sorted
and deduplicated in place, then merged into the index in one linear pass). A document's n-grams
are looked up with one `searchsorted` per batch. An evaluation text shorter than n words gives no n-gram (it would only match a document
equal to it). Two different n-grams share a hash with probability ~ m / 2^64 per lookup (m
n-grams in the index): ~1e-12 for a 100 MB set, so a false match is not a practical concern.

Evaluation files (local paths or fsspec URLs, optionally gzipped): `.jsonl`/`.jsonl.gz`/`.json.gz`
(every string value of every object, nested ones too, is a text: question, choices, answer),
`.parquet` (every string column), anything else plain text (each blank-line-separated paragraph
is a text). They are read in batches, so only the index grows with the evaluation set.

A matched document goes to `rejects` with stage `decontaminate`, reason `decontamination` and a
detail naming the evaluation file and how many n-grams it shares; the move is the near-dedup one
(`warehouse.commit.move_to_rejects`): rejects merged on (id, stage) first, then a delete from docs
(a new docs version), so a run killed half-way and run again converges on one clean run.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from pipeline.dedup.minhash import flat_shingle_hashes
from pipeline.readers.inputs import format_from_name, gunzipped, open_file
from warehouse.commit import move_to_rejects, new_build_id, record_stage, stage_row
from warehouse.errors import MissingFileError, UsageError
from warehouse.layout import DatasetPaths
from warehouse.read import iter_doc_batches, open_table
from warehouse.schema import DATASET_SOURCE

REJECT_STAGE = "decontaminate"
REJECT_REASON = "decontamination"
BATCH_CHARS = 1_000_000  # evaluation text hashed per kernel call (its buffers are ~10x this)
DOC_BATCH = 1024


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


class EvaluationFileError(UsageError):
    """An evaluation file that cannot be read as its name says (one line naming it)."""


def check_evaluation_files(paths: list[str]) -> None:
    """Raise MissingFileError for the first evaluation file that does not exist: a build checks
    before it reads its inputs, not after."""
    for path in paths:
        try:
            open_file(path).close()
        except FileNotFoundError:
            raise MissingFileError(f"evaluation file not found: {path}") from None


def evaluation_texts(path: str) -> Iterator[str]:
    """The texts of one evaluation file (see the module doc for the formats)."""
    try:
        yield from _evaluation_texts(path)
    except FileNotFoundError:
        raise MissingFileError(f"evaluation file not found: {path}") from None
    except (OSError, EOFError, pa.ArrowException, UnicodeDecodeError) as exc:
        raise EvaluationFileError(f"{path}: cannot read it as an evaluation file: {exc}") from None


def _evaluation_texts(path: str) -> Iterator[str]:
    kind = format_from_name(path)
    if kind == "parquet":
        with open_file(path) as handle:
            parquet = pq.ParquetFile(handle)
            columns = [f.name for f in parquet.schema_arrow if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            for batch in parquet.iter_batches(columns=columns):
                for column in batch.columns:
                    yield from (text for text in column.to_pylist() if text)
        return
    with open_file(path) as handle, gunzipped(handle) as stream:
        if kind == "jsonl":
            for number, line in enumerate(stream, 1):
                if line.strip():
                    try:
                        yield from _strings(json.loads(line))
                    except ValueError as exc:
                        raise EvaluationFileError(f"{path}: line {number} is not JSON: {exc}") from None
            return
        paragraph: list[str] = []
        for raw in stream:
            line = raw.decode("utf-8", errors="replace")
            if line.strip():
                paragraph.append(line)
            elif paragraph:
                yield "".join(paragraph)
                paragraph = []
        if paragraph:
            yield "".join(paragraph)


@numba.njit(cache=True, nogil=True)
def _dedupe_sorted(values):
    """Move the distinct values of a sorted array to its front, in place; returns how many."""
    k = 0
    for i in range(values.shape[0]):
        if k == 0 or values[i] != values[k - 1]:
            values[k] = values[i]
            k += 1
    return k


@numba.njit(cache=True, nogil=True)
def _merge(hashes, file_of, part, number):
    """The sorted union of `hashes` and `part` (both sorted, distinct) with each value's file
    number: an existing value keeps its own, a new one gets `number`. One linear pass."""
    out = np.empty(hashes.shape[0] + part.shape[0], np.uint64)
    out_file = np.empty(out.shape[0], np.uint16)
    i = j = k = 0
    while i < hashes.shape[0] or j < part.shape[0]:
        if j == part.shape[0] or (i < hashes.shape[0] and hashes[i] <= part[j]):
            if j < part.shape[0] and hashes[i] == part[j]:
                j += 1
            out[k], out_file[k] = hashes[i], file_of[i]
            i += 1
        else:
            out[k], out_file[k] = part[j], number
            j += 1
        k += 1
    return out[:k], out_file[:k]


def _join_unique(chunks: list[np.ndarray]) -> np.ndarray:
    """The distinct values of some uint64 arrays, sorted, in little more than their size of memory
    (joined, the list emptied, sorted and deduplicated in place)."""
    joined = np.concatenate(chunks) if chunks else np.empty(0, np.uint64)
    del chunks[:]
    joined.sort()
    return joined[: _dedupe_sorted(joined)]


def _batches(texts: Iterator[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= BATCH_CHARS:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


@dataclass
class NgramIndex:
    """The distinct n-gram hashes of some evaluation files, sorted, and the file each came from."""

    n: int
    files: list[str]
    hashes: np.ndarray  # uint64, sorted, unique
    file_of: np.ndarray  # uint16: index into `files` of the first file holding that n-gram
    ngrams_per_file: list[int] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.file_of.nbytes

    @classmethod
    def build(cls, files: list[str | Path], n: int = 13, progress: bool = False) -> "NgramIndex":
        if n < 1:
            raise UsageError(f"n-gram size must be at least 1, got {n}")
        if not files:
            raise UsageError("no evaluation files to decontaminate against")
        names = [str(f) for f in files]
        if len(names) > np.iinfo(np.uint16).max:
            raise UsageError(f"at most {np.iinfo(np.uint16).max} evaluation files, got {len(names)}")
        hashes, file_of = np.empty(0, np.uint64), np.empty(0, np.uint16)
        per_file: list[int] = []
        for number, name in enumerate(tqdm(names, desc="decontamination index", unit="file", disable=not progress)):
            part = _join_unique([
                np.unique(flat[np.repeat(words >= n, np.diff(offsets))])
                for flat, offsets, words in (flat_shingle_hashes(batch, n) for batch in _batches(evaluation_texts(name)))
            ])
            per_file.append(len(part))
            # A linear merge into the sorted index: an n-gram an earlier file holds stays that file's.
            hashes, file_of = _merge(hashes, file_of, part, number)
            del part
        return cls(n, names, hashes, file_of, per_file)

    def match(self, texts: pa.Array | pa.ChunkedArray | list[str]) -> tuple[np.ndarray, np.ndarray]:
        """For each text: the file number of its first n-gram found in the index (-1: none), and
        how many of its n-grams are there."""
        flat, offsets, _ = flat_shingle_hashes(texts, self.n)
        n_texts = len(offsets) - 1
        file_number = np.full(n_texts, -1, np.int32)
        shared = np.zeros(n_texts, np.int64)
        if len(self.hashes) == 0 or len(flat) == 0:
            return file_number, shared
        pos = np.minimum(np.searchsorted(self.hashes, flat), len(self.hashes) - 1)
        hit = self.hashes[pos] == flat
        text_of = np.repeat(np.arange(n_texts), np.diff(offsets))
        np.add.at(shared, text_of[hit], 1)
        hit_texts, first_hit = np.unique(text_of[hit], return_index=True)
        file_number[hit_texts] = self.file_of[pos[hit]][first_hit]
        return file_number, shared


@dataclass
class DecontaminationReport:
    documents: int = 0  # documents checked
    removed: int = 0
    per_file: dict[str, int] = field(default_factory=dict)  # documents removed, by evaluation file
    index_ngrams: int = 0
    index_bytes: int = 0
    seconds: float = 0.0


def find_contaminated(ds: DatasetPaths, index: NgramIndex, progress: bool = False) -> tuple[pa.Table, list[str], int]:
    """(id, detail) of every document in docs sharing an n-gram with the index, the evaluation file
    each matched, and how many documents were checked."""
    table = open_table(ds, "docs")
    ids: list[str] = []
    details: list[str] = []
    matched_files: list[str] = []
    checked = 0
    bar = tqdm(total=table.to_pyarrow_dataset().count_rows(), desc="decontaminate", unit="doc", disable=not progress)
    for batch in iter_doc_batches(ds, ("id", "text"), table.version(), DOC_BATCH):
        file_number, shared = index.match(batch.column("text"))
        checked += batch.num_rows
        bar.update(batch.num_rows)
        for row in np.flatnonzero(file_number >= 0):
            name = index.files[file_number[row]]
            ids.append(batch.column("id")[row].as_py())
            details.append(f"{name}: {shared[row]} shared {index.n}-grams")
            matched_files.append(name)
    bar.close()
    removed = pa.table({"id": pa.array(ids, pa.string()), "detail": pa.array(details, pa.string())})
    return removed, matched_files, checked


def decontaminate_dataset(
    ds: DatasetPaths, index: NgramIndex, build_id: str | None = None, progress: bool = False
) -> DecontaminationReport:
    """Move every document sharing an n-gram with `index` from docs to rejects; one stats row."""
    started = time.perf_counter()
    removed, matched_files, checked = find_contaminated(ds, index, progress)
    moved = move_to_rejects(ds, removed, stage=REJECT_STAGE, reason=REJECT_REASON)
    seconds = time.perf_counter() - started
    record_stage(ds, stage_row(DATASET_SOURCE, build_id or new_build_id(), REJECT_STAGE,
                               records_in=checked, dropped=moved, seconds=seconds))
    return DecontaminationReport(checked, moved, dict(Counter(matched_files)), len(index.hashes), index.nbytes, seconds)
