"""The token file format: a 1 KiB self-describing header, then raw little-endian tokens.

Header: 256 little-endian int32 — [0] magic 0x544D494C ("TMIL"), [1] format version 1,
[2] token count, [3] bytes per token (2 = uint16 when vocab <= 65,536, else 4 = uint32),
[4] vocab size, [5] EOS id, the rest 0. A reader checks a file in three lines, as llm.c's shards
allow, and memory-maps the tokens without loading them.

Token counts above 2**31-1 do not fit the int32 header field: such corpora are split into several
files (the writer refuses rather than wrapping).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = 0x544D494C
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4


class TokenFileError(ValueError):
    """A token file that is not one, is truncated, or was written by another format version."""


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size <= 65_536 else np.dtype("<u4")


def make_header(n_tokens: int, vocab_size: int, eos_id: int) -> np.ndarray:
    if n_tokens > np.iinfo(np.int32).max:
        raise TokenFileError(f"{n_tokens} tokens do not fit one file's int32 header; split the file")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[:6] = [MAGIC, VERSION, n_tokens, dtype_for_vocab(vocab_size).itemsize, vocab_size, eos_id]
    return header


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
        size = path.stat().st_size
        if size < HEADER_BYTES:
            raise TokenFileError(f"{path}: {size} bytes is shorter than the {HEADER_BYTES}-byte header")
        header = np.fromfile(path, dtype="<i4", count=HEADER_INTS)
        if header[0] != MAGIC:
            raise TokenFileError(f"{path}: not a tokenmill token file (magic {header[0]:#x} != {MAGIC:#x})")
        if header[1] != VERSION:
            raise TokenFileError(f"{path}: format version {header[1]}, this reader knows {VERSION}")
        n_tokens, width, vocab_size, eos_id = (int(x) for x in header[2:6])
        if width not in (2, 4) or width != dtype_for_vocab(vocab_size).itemsize:
            raise TokenFileError(f"{path}: {width} bytes per token does not fit vocabulary {vocab_size}")
        expected = HEADER_BYTES + n_tokens * width
        if size != expected:
            raise TokenFileError(
                f"{path}: header says {n_tokens} tokens ({expected} bytes) but the file has {size} bytes"
                + (" (truncated)" if size < expected else "")
            )
        tokens = np.memmap(path, dtype=dtype_for_vocab(vocab_size), mode="r", offset=HEADER_BYTES, shape=(n_tokens,))
        return cls(path, n_tokens, vocab_size, eos_id, tokens)
