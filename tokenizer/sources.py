"""Where the text to tokenize comes from: a warehouse dataset version, or plain text files.

Both sources give the same four things: a fingerprint of their content (for the "re-run is a
no-op" check), a survey (sizes per split), the training-split texts chosen for the tokenizer
sample, and the encode jobs for packing. Everything is streamed; nothing holds the corpus.

Splits. A dataset is split by document: a document is validation when the hash of its id falls
under `val_fraction` (at least one document when there are two or more). Plain text files are
split as nanoGPT splits tinyshakespeare: the last `val_fraction` of the text, in bytes over the
files in the order given, is validation, starting at the first line start at or after that point
(or at the point itself, moved to a character boundary, when no line break follows it). Each
file, or each file's part on either side of the split, is one document.
"""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tokenizer.pack import JOB_BYTES, Part
from tokenizer.sample import SAMPLE_SALT, VAL_SALT, key_hash, threshold
from warehouse.errors import TokenmillError
from warehouse.layout import DatasetPaths
from warehouse.read import DatasetNotFound, docs_version, iter_doc_batches

SAMPLE_BLOCK_BYTES = 64 * 1024
READ_BYTES = 1 << 20


class TokenizeError(TokenmillError, ValueError):
    """Input that cannot be tokenized as asked; the message says what to change."""


def _check_val_fraction(val_fraction: float) -> None:
    if not 0 <= val_fraction < 1:
        raise TokenizeError(f"--val-fraction must be in [0, 1), got {val_fraction}")


class DatasetSource:
    """The docs table of a warehouse dataset, pinned to one version for the whole run."""

    def __init__(self, spec: str, val_fraction: float, version: int | None = None):
        _check_val_fraction(val_fraction)
        self.spec, self.val_fraction = spec, val_fraction
        self.paths = DatasetPaths.parse(spec)
        try:
            self.version = docs_version(self.paths) if version is None else version
        except DatasetNotFound as exc:
            raise TokenizeError(str(exc)) from None
        self._val_below = threshold(val_fraction)
        self.train_bytes = self.val_bytes = self.n_docs = 0

    def fingerprint(self) -> dict:
        docs = self.paths.docs
        where = docs if "://" in docs else str(Path(docs).resolve())
        return {"docs": where, "version": self.version, "val_fraction": self.val_fraction}

    def describe(self) -> dict:
        return {"dataset": self.spec, "dataset_version": self.version}

    def survey(self) -> None:
        """Pass 1 (ids and text lengths only): documents and bytes per split. Once per source."""
        if self.n_docs:
            return
        train_bytes = val_bytes = n_docs = n_val = 0
        lowest = (2**64, 0)  # (hash, bytes) of the document with the lowest val hash
        for ids, lengths in self._batches(texts=False):
            if not ids:
                continue
            hashes = self._val_hashes(ids)
            is_val = hashes < self._val_below
            val_bytes += int(lengths[is_val].sum())
            train_bytes += int(lengths[~is_val].sum())
            n_docs, n_val = n_docs + len(ids), n_val + int(is_val.sum())
            low = int(hashes.argmin())
            lowest = min(lowest, (int(hashes[low]), int(lengths[low])))
        if n_docs == 0:
            raise TokenizeError(f"dataset {self.spec} (docs version {self.version}) has no documents")
        if n_val == 0 and self.val_fraction > 0 and n_docs >= 2:
            # No document fell under the rate (a small dataset): validate on the lowest-hash one.
            self._val_below = lowest[0] + 1
            train_bytes, val_bytes = train_bytes - lowest[1], lowest[1]
        if n_val == n_docs:
            raise TokenizeError(f"dataset {self.spec}: no training documents left with --val-fraction {self.val_fraction}")
        self.train_bytes, self.val_bytes, self.n_docs = train_bytes, val_bytes, n_docs

    def training_texts(self, rate: float) -> Iterator[str]:
        """Pass 2: texts of training documents whose sample hash falls under `rate`."""
        below = threshold(rate)
        for ids, texts in self._batches(texts=True):
            val = self._val_hashes(ids) < self._val_below
            for doc_id, text, is_val in zip(ids, texts.to_pylist(), val.tolist()):
                if not is_val and key_hash(SAMPLE_SALT, doc_id) < below:
                    yield text

    def encode_jobs(self) -> Iterator[list[Part]]:
        """Pass 3: every document, in table order, in jobs of about JOB_BYTES of text."""
        for ids, texts in self._batches(texts=True):
            is_val = self._val_hashes(ids) < self._val_below
            lengths = pc.binary_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
            strings = texts.to_pylist()
            job_of_doc = np.cumsum(lengths) // JOB_BYTES
            bounds = [0, *(np.flatnonzero(np.diff(job_of_doc)) + 1).tolist(), len(ids)]
            for first, last in zip(bounds, bounds[1:]):
                job = []
                for split, want_val in (("train", False), ("val", True)):
                    chosen = first + np.flatnonzero(is_val[first:last] == want_val)
                    if len(chosen):
                        job.append(Part(split, [strings[i] for i in chosen], int(lengths[chosen].sum())))
                yield job

    def _batches(self, texts: bool) -> Iterator[tuple[list[str], pa.Array | np.ndarray]]:
        """(ids, texts) or (ids, UTF-8 byte lengths) per record batch of the pinned version."""
        for batch in iter_doc_batches(self.paths, ("id", "text"), self.version):
            column = batch.column("text")
            if texts:
                yield batch.column("id").to_pylist(), column
            else:
                yield batch.column("id").to_pylist(), pc.binary_length(column).to_numpy(zero_copy_only=False)

    @staticmethod
    def _val_hashes(ids: list[str]) -> np.ndarray:
        return np.fromiter((key_hash(VAL_SALT, i) for i in ids), dtype=np.uint64, count=len(ids))


@dataclass(frozen=True)
class FilePart:
    index: int
    path: Path
    start: int
    end: int
    split: str


class TextSource:
    """Plain UTF-8 text files, read in the order given."""

    def __init__(self, files: list[str | Path], val_fraction: float):
        _check_val_fraction(val_fraction)
        if not files:
            raise TokenizeError("no text files given")
        self.files = [Path(f).resolve() for f in files]
        for path in self.files:
            if not path.is_file():
                raise TokenizeError(f"text file not found: {path}")
        self.val_fraction = val_fraction
        self.inputs = [self._inspect(path) for path in self.files]
        self.parts = self._split_parts()
        self.train_bytes = sum(p.end - p.start for p in self.parts if p.split == "train")
        self.val_bytes = sum(p.end - p.start for p in self.parts if p.split == "val")
        if self.train_bytes == 0:
            raise TokenizeError("the text files hold no training text")

    def fingerprint(self) -> dict:
        return {"inputs": self.inputs, "val_fraction": self.val_fraction}

    def describe(self) -> dict:
        return {"dataset": [str(p) for p in self.files], "dataset_version": None, "inputs": self.inputs}

    def survey(self) -> None:
        """Nothing to do: sizes and the split point were found while fingerprinting."""

    def training_texts(self, rate: float) -> Iterator[str]:
        below = threshold(rate)
        for part in self.parts:
            if part.split != "train":
                continue
            for offset, block in _line_blocks(part.path, part.start, part.end, SAMPLE_BLOCK_BYTES):
                if key_hash(SAMPLE_SALT, f"{part.index}:{offset}") < below:
                    yield block.decode("utf-8")

    def encode_jobs(self) -> Iterator[list[Part]]:
        for part in self.parts:
            blocks = _line_blocks(part.path, part.start, part.end, JOB_BYTES)
            previous = next(blocks, None)
            while previous is not None:
                current = next(blocks, None)
                _, data = previous
                text = data.decode("utf-8")  # checked to be UTF-8 when the file was fingerprinted
                yield [Part(part.split, [text], len(data), whole_documents=False, ends_document=current is None)]
                previous = current

    @staticmethod
    def _inspect(path: Path) -> dict:
        """Size and sha256 of a file, checking on the way that it is UTF-8."""
        digest = hashlib.sha256()
        decoder = codecs.getincrementaldecoder("utf-8")()
        size = 0
        with open(path, "rb") as handle:
            try:
                while block := handle.read(READ_BYTES):
                    digest.update(block)
                    decoder.decode(block)
                    size += len(block)
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                raise TokenizeError(
                    f"{path}: not UTF-8 (invalid bytes near byte {size + exc.start}); convert it first, "
                    "e.g. with `iconv -f latin1 -t utf-8`"
                ) from None
        return {"path": str(path), "bytes": size, "sha256": digest.hexdigest()}

    def _split_parts(self) -> list[FilePart]:
        total = sum(i["bytes"] for i in self.inputs)
        cut = total - int(total * self.val_fraction) if self.val_fraction > 0 else total
        parts, offset = [], 0
        for index, (path, info) in enumerate(zip(self.files, self.inputs)):
            size = info["bytes"]
            if offset + size <= cut:
                split_at = size
            elif offset >= cut:
                split_at = 0
            else:
                split_at = _line_start_at_or_after(path, cut - offset)
            for split, start, end in (("train", 0, split_at), ("val", split_at, size)):
                if end > start:
                    parts.append(FilePart(index, path, start, end, split))
            offset += size
        return parts


def _line_start_at_or_after(path: Path, position: int) -> int:
    """The first line start at or after `position` (> 0) in a file, else `position` moved past
    any UTF-8 continuation bytes (the next character boundary)."""
    with open(path, "rb") as handle:
        handle.seek(position - 1)
        at = position - 1
        while block := handle.read(READ_BYTES):
            newline = block.find(b"\n")
            if newline >= 0:
                return at + newline + 1
            at += len(block)
        handle.seek(position)
        tail = handle.read(4)
        return position + next((i for i, b in enumerate(tail) if b & 0xC0 != 0x80), len(tail))


def _line_blocks(path: Path, start: int, end: int, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) blocks of about `block_bytes` covering [start, end), each ending after a
    line break where the block holds one, else at a UTF-8 character boundary. Encoding such blocks
    one by one gives the ids of encoding the whole range, as "\\n" is a piece that never merges."""
    with open(path, "rb") as handle:
        handle.seek(start)
        offset, data = start, b""
        while offset < end:
            wanted = min(block_bytes, end - offset) - len(data)
            if wanted > 0:
                more = handle.read(wanted)
                if not more:
                    raise TokenizeError(f"{path} became shorter while it was read")
                data += more
            if offset + len(data) >= end:
                yield offset, data
                return
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                # One long line: cut before its last character's first byte (not a continuation byte).
                cut = len(data) - 1
                while cut > 0 and data[cut] & 0xC0 == 0x80:
                    cut -= 1
                cut = cut or len(data)
            yield offset, data[:cut]
            offset, data = offset + cut, data[cut:]
