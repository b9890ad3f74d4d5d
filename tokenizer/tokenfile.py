"""The token file format: a 1 KiB self-describing header, then raw little-endian tokens.

`<split>.bin` header: 256 little-endian int32 — [0] magic 0x544D494C ("TMIL"), [1] format version 1,
[2] token count, [3] bytes per token (2 = uint16 when vocab <= 65,536, else 4 = uint32),
[4] vocab size, [5] EOS id, the rest 0. A reader checks a file in three lines, as llm.c's shards
allow, and memory-maps the tokens without loading them. Every document ends with one EOS token.

`<split>.idx` (the document index beside it): the same kind of header — [0] magic 0x544D4958
("TMIX"), [1] version 1, [2] document count D, [3] the .bin's token count, the rest 0 — then D + 1
little-endian uint64: the start offset of each document in the .bin, then the token count, so
document i is `tokens[starts[i]:starts[i + 1]]` (its EOS included).

Token counts above 2**31-1 do not fit the int32 header field: such corpora are split into several
files (the writer refuses rather than wrapping).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from warehouse.errors import TokenmillError

MAGIC = 0x544D494C
INDEX_MAGIC = 0x544D4958
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
MAX_TOKENS = int(np.iinfo(np.int32).max)


class TokenFileError(TokenmillError, ValueError):
    """A token file that is not one, is truncated, or was written by another format version."""


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size <= 65_536 else np.dtype("<u4")


def make_header(n_tokens: int, vocab_size: int, eos_id: int) -> np.ndarray:
    if n_tokens > MAX_TOKENS:
        raise TokenFileError(f"{n_tokens} tokens do not fit one file's int32 header; split the file")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:6] = [MAGIC, VERSION, n_tokens, dtype_for_vocab(vocab_size).itemsize, vocab_size, eos_id]
    return header


def index_path(path: str | os.PathLike) -> Path:
    """The document index that sits beside a token file: train.bin -> train.idx."""
    return Path(path).with_suffix(".idx")


def _read_header(path: Path, magic: int, what: str) -> np.ndarray:
    size = path.stat().st_size
    if size < HEADER_BYTES:
        raise TokenFileError(f"{path}: {size} bytes is shorter than the {HEADER_BYTES}-byte {what} header")
    header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
    if header[0] != magic:
        raise TokenFileError(f"{path}: not a tokenmill {what} (magic {int(header[0]) & 0xFFFFFFFF:#x} != {magic:#x})")
    if header[1] != VERSION:
        raise TokenFileError(f"{path}: format version {header[1]}, this reader knows {VERSION}")
    return header


def _check_size(path: Path, expected: int, what: str) -> None:
    size = path.stat().st_size
    if size != expected:
        raise TokenFileError(
            f"{path}: header says {what} ({expected} bytes) but the file has {size} bytes"
            + (" (truncated)" if size < expected else "")
        )


@dataclass(frozen=True)
class TokenFile:
    """A validated, memory-mapped token file. `tokens` is a read-only np.memmap."""

    path: Path
    n_tokens: int
    vocab_size: int
    eos_id: int
    tokens: np.memmap

    @classmethod
    def open(cls, path: str | os.PathLike) -> "TokenFile":
        path = Path(path)
        header = _read_header(path, MAGIC, "token file")
        n_tokens, width, vocab_size, eos_id = (int(x) for x in header[2:6])
        if n_tokens < 0 or vocab_size <= 0:
            raise TokenFileError(f"{path}: corrupt header ({n_tokens} tokens, vocabulary {vocab_size})")
        if width not in (2, 4) or width != dtype_for_vocab(vocab_size).itemsize:
            raise TokenFileError(f"{path}: {width} bytes per token does not fit vocabulary {vocab_size}")
        if not 0 <= eos_id < vocab_size:
            raise TokenFileError(f"{path}: EOS id {eos_id} is outside the vocabulary of {vocab_size}")
        _check_size(path, HEADER_BYTES + n_tokens * width, f"{n_tokens} tokens")
        # np.memmap refuses a zero-length map; an empty split is still a valid file.
        if n_tokens == 0:
            tokens = np.zeros(0, dtype=dtype_for_vocab(vocab_size)).view(np.memmap)
        else:
            tokens = np.memmap(path, dtype=dtype_for_vocab(vocab_size), mode="r", offset=HEADER_BYTES, shape=(n_tokens,))
        return cls(path, n_tokens, vocab_size, eos_id, tokens)

    def doc_starts(self) -> np.ndarray:
        """Document start offsets from the .idx beside this file, then n_tokens (D + 1 uint64)."""
        path = index_path(self.path)
        if not path.exists():
            raise TokenFileError(f"{path}: document index missing for {self.path}")
        header = _read_header(path, INDEX_MAGIC, "document index")
        n_docs, n_tokens = int(header[2]), int(header[3])
        if n_docs < 0 or n_tokens != self.n_tokens:
            raise TokenFileError(f"{path}: indexes {n_tokens} tokens but {self.path} holds {self.n_tokens}")
        _check_size(path, HEADER_BYTES + (n_docs + 1) * 8, f"{n_docs} documents")
        starts = np.fromfile(path, dtype="<u8", offset=HEADER_BYTES)
        increasing = np.all(np.diff(starts.astype(np.int64)) > 0)
        if (n_docs and starts[0] != 0) or starts[-1] != n_tokens or not increasing:
            raise TokenFileError(f"{path}: document offsets are not increasing up to the token count")
        return starts

    def sample_batch(self, rng: np.random.Generator, batch_size: int, T: int) -> tuple[np.ndarray, np.ndarray]:
        """`batch_size` random windows of T+1 tokens: inputs x and next-token targets y, int64 (B, T).

        Only the sampled windows are read from the memory map, never the whole file.
        """
        self._require_window(T)
        starts = rng.integers(0, self.n_tokens - T, size=batch_size)
        windows = self.tokens[starts[:, None] + np.arange(T + 1)].astype(np.int64)
        return windows[:, :-1], np.ascontiguousarray(windows[:, 1:])

    def iter_windows(
        self, T: int, batch_size: int = 1, max_windows: int | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Walk the file from the start in back-to-back windows of T+1 tokens (each target token
        appears once), yielding int64 (x, y) batches of shape (<= batch_size, T) for evaluation.

        Window i covers tokens[i*T : i*T + T + 1]; the tail shorter than a window is left out.
        """
        self._require_window(T)
        n_windows = (self.n_tokens - 1) // T
        if max_windows is not None:
            n_windows = min(n_windows, max_windows)
        for first in range(0, n_windows, batch_size):
            starts = np.arange(first, min(first + batch_size, n_windows)) * T
            windows = self.tokens[starts[:, None] + np.arange(T + 1)].astype(np.int64)
            yield windows[:, :-1], np.ascontiguousarray(windows[:, 1:])

    def _require_window(self, T: int) -> None:
        if T < 1:
            raise ValueError(f"window length must be positive, got {T}")
        if self.n_tokens < T + 1:
            raise TokenFileError(f"{self.path}: {self.n_tokens} tokens, fewer than one window of {T + 1}")


class TokenFileWriter:
    """Streams documents into a token file and its .idx without holding them in memory.

    Tokens go to temporary files beside the targets; `commit()` patches both headers, flushes to
    disk and renames, so a reader sees either the previous file or the complete new one, never a
    half-written one. Used as a context manager it commits on success and deletes the temporary
    files on error.

        with TokenFileWriter(out / "train.bin", vocab_size, eos_id) as w:
            w.add_documents(flat, lengths)   # whole documents; EOS appended after each
            w.write(part); w.end_document()  # or one long document in pieces
    """

    def __init__(self, path: str | os.PathLike, vocab_size: int, eos_id: int):
        if not 0 <= eos_id < vocab_size:
            raise TokenFileError(f"EOS id {eos_id} is outside the vocabulary of {vocab_size}")
        self.path = Path(path)
        self.index_path = index_path(self.path)
        self.vocab_size, self.eos_id = vocab_size, eos_id
        self.dtype = dtype_for_vocab(vocab_size)
        self.n_tokens = 0
        self.n_docs = 0
        self._open_start: int | None = None  # start of a document written in pieces, not yet ended
        suffix = f".tmp-{os.getpid()}"
        self._tmp = self.path.with_name(self.path.name + suffix)
        self._tmp_index = self.index_path.with_name(self.index_path.name + suffix)
        self._bin = open(self._tmp, "wb")
        self._idx = open(self._tmp_index, "wb")
        self._bin.write(bytes(HEADER_BYTES))  # placeholder header, patched by commit()
        self._idx.write(bytes(HEADER_BYTES))

    def write(self, tokens: np.ndarray) -> None:
        """Append tokens to the current document (begun by this call when none is open)."""
        if self._open_start is None:
            self._open_start = self.n_tokens
        self._append(np.asarray(tokens))

    def end_document(self) -> None:
        """Close the current document with EOS (an empty document is a lone EOS)."""
        start = self.n_tokens if self._open_start is None else self._open_start
        self._append(np.array([self.eos_id]))
        self._append_starts(np.array([start], dtype="<u8"))
        self._open_start = None

    def add_documents(self, flat: np.ndarray, lengths: np.ndarray) -> None:
        """Append whole documents: `flat` holds their tokens back to back, `lengths[i]` tokens each.

        EOS is appended after each. A document left open by `write()` is continued by the first one.
        """
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.size == 0:
            return
        ends = np.cumsum(lengths)
        if ends[-1] != len(flat):
            raise ValueError(f"lengths sum to {ends[-1]} but {len(flat)} tokens were given")
        starts = self.n_tokens + np.concatenate(([0], ends[:-1] + np.arange(1, len(lengths))))
        if self._open_start is not None:
            starts[0] = self._open_start
        self._append(np.insert(np.asarray(flat), ends, self.eos_id))
        self._append_starts(starts.astype("<u8"))
        self._open_start = None

    def commit(self) -> Path:
        """Finish both files (closing an open document) and move them into place; returns the path."""
        if self._open_start is not None:
            self.end_document()
        self._idx.write(np.array([self.n_tokens], dtype="<u8").tobytes())  # the end sentinel
        index_header = np.zeros(HEADER_INTS, dtype="<i4")
        index_header[:4] = [INDEX_MAGIC, VERSION, self.n_docs, self.n_tokens]
        for handle, header in ((self._bin, make_header(self.n_tokens, self.vocab_size, self.eos_id)), (self._idx, index_header)):
            handle.seek(0)
            handle.write(header.tobytes())
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        # The index first: a .bin is never newer than the index that describes it.
        os.replace(self._tmp_index, self.index_path)
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        for handle, tmp in ((self._bin, self._tmp), (self._idx, self._tmp_index)):
            handle.close()
            tmp.unlink(missing_ok=True)

    def __enter__(self) -> "TokenFileWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def _append(self, tokens: np.ndarray) -> None:
        if tokens.size == 0:
            return
        low, high = int(tokens.min()), int(tokens.max())
        if low < 0 or high >= self.vocab_size:
            raise TokenFileError(f"token id {low if low < 0 else high} is outside the vocabulary of {self.vocab_size}")
        if self.n_tokens + tokens.size > MAX_TOKENS:
            raise TokenFileError(f"more than {MAX_TOKENS} tokens do not fit one file's int32 header; split the file")
        self._bin.write(np.ascontiguousarray(tokens, dtype=self.dtype).data)
        self.n_tokens += tokens.size

    def _append_starts(self, starts: np.ndarray) -> None:
        self._idx.write(np.ascontiguousarray(starts, dtype="<u8").data)
        self.n_docs += len(starts)
