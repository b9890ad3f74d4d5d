"""MinHash signatures and shingle hashes of a few documents in plain Python and numpy: no compiled code.

The values of the compiled kernels (`pipeline.dedup.kernels`), and so datasketch's (tests compare all
three on real text), for work too small to pay for those kernels: importing numba and loading its
cached kernels costs a process about 0.6 CPU-seconds and 150 MB, more than near dedup of a few pages
takes any other way. Here each shingle is joined in Python, hashed by `hashlib.sha1` (datasketch's
`sha1_hash32`/`sha1_hash64`: the digest's first bytes, little-endian), and folded into the
permutations by one numpy broadcast per chunk of shingles, as datasketch's `update_batch` does.
`pipeline.dedup.minhash` decides which path a batch takes.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from pipeline.dedup.shingles import folded_words, lowered_texts

# Shingles folded into the permutations at once: bounds the (shingles, num_perm) matrix to ~8 MB.
CHUNK = 8192
_MERSENNE = np.uint64((1 << 61) - 1)
_MASK32 = np.uint64(0xFFFFFFFF)


def shingles_of(words: list[str], n: int) -> list[str]:
    """A text's shingles in order, repeats included: as `shingles.all_shingle_bounds` cuts them."""
    if not words:
        return []
    if len(words) <= n:
        return [" ".join(words)]
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]


def sha1_prefix64(shingles: list[str]) -> np.ndarray:
    """datasketch's `sha1_hash64` of every shingle (UTF-8), as uint64."""
    digests = b"".join(hashlib.sha1(s.encode("utf-8")).digest()[:8] for s in shingles)
    return np.frombuffer(digests, "<u8").astype(np.uint64)


def _fmix32(h: np.ndarray) -> np.ndarray:
    """The MurmurHash3 32-bit finalizer on uint32 values (datasketch's pre-mix for affine32)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _fold(row: np.ndarray, hashes: np.ndarray, a: np.ndarray, b: np.ndarray, legacy: bool) -> None:
    """row[k] = min(row[k], permutation k of every hash), `kernels._fold` for many hashes at once."""
    with np.errstate(over="ignore"):
        for start in range(0, len(hashes), CHUNK):
            h32 = hashes[start : start + CHUNK] & _MASK32
            if legacy:
                values = ((h32[:, None] * a[None, :] + b[None, :]) % _MERSENNE) & _MASK32
            else:
                values = _fmix32(h32.astype(np.uint32))[:, None] * a[None, :] + b[None, :]
            np.minimum(row, values.min(axis=0).astype(row.dtype, copy=False), out=row)


def signatures(texts: pa.Array | pa.ChunkedArray, ngram: int, a: np.ndarray, b: np.ndarray, legacy: bool,
               empty: np.uint32) -> tuple[np.ndarray, np.ndarray]:
    """(uint32 signatures (docs, num_perm), shingle counts): `minhash.signatures` without the kernels."""
    texts = lowered_texts(texts).to_pylist()
    out = np.full((len(texts), len(a)), empty, dtype=np.uint64 if legacy else np.uint32)
    counts = np.zeros(len(texts), np.int64)
    for d, text in enumerate(texts):
        shingles = shingles_of(folded_words(text), ngram)
        counts[d] = len(shingles)
        if shingles:
            _fold(out[d], sha1_prefix64(shingles), a, b, legacy)
    return out.astype(np.uint32, copy=False), counts


def flat_shingle_hashes(texts: pa.Array | pa.ChunkedArray, ngram: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`minhash.flat_shingle_hashes` without the kernels: flat hashes, per-text offsets, word counts."""
    words = [folded_words(text) for text in lowered_texts(texts).to_pylist()]
    shingles = [shingles_of(w, ngram) for w in words]
    offsets = np.zeros(len(words) + 1, np.int64)
    np.cumsum([len(s) for s in shingles], out=offsets[1:])
    flat = sha1_prefix64([s for text in shingles for s in text])
    return flat, offsets, np.array([len(w) for w in words], np.int64)
