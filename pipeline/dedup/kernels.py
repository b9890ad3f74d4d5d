"""The near-dedup stage's compiled kernels (numba): normalising, shingling, hashing, MinHash.

Kept apart so that importing the stage does not import numba (0.15 CPU-seconds, 70 MB) and loading
a kernel from numba's cache (about 0.4 CPU-seconds and 80 MB more, once per process) is paid only by
work large enough to gain from it: `pipeline.dedup.minhash` does a few documents in numpy and
hashlib instead (`pipeline.dedup.few_docs`), with the same values. The callers are
`shingles.normalised_buffers` and `minhash`; see those modules for what is computed and why.
"""

from __future__ import annotations

import numba
import numpy as np

from pipeline.dedup.sha1 import sha1_prefix64_many

_SPACE = 0x20
_MASK32 = 0xFFFFFFFF
_MERSENNE = (1 << 61) - 1


@numba.njit(cache=True, nogil=True)
def fold_kernel(data, offsets, is_word_char):
    """Copy the word characters of each UTF-8 text, one space between words; new (data, offsets)."""
    out = np.empty(data.shape[0], np.uint8)  # folding never makes a text longer
    out_offsets = np.empty(offsets.shape[0], np.int64)
    out_offsets[0] = 0
    o = 0
    for d in range(offsets.shape[0] - 1):
        p, end = offsets[d], offsets[d + 1]
        doc_start, gap = o, False
        while p < end:
            lead = np.int64(data[p])
            if lead < 0x80:
                size, cp = 1, lead
            elif lead < 0xE0:
                size, cp = 2, lead & 0x1F
            elif lead < 0xF0:
                size, cp = 3, lead & 0x0F
            else:
                size, cp = 4, lead & 0x07
            for j in range(1, size):
                cp = (cp << 6) | (np.int64(data[p + j]) & 0x3F)
            if is_word_char[cp]:
                if gap and o > doc_start:
                    out[o] = _SPACE
                    o += 1
                gap = False
                for j in range(size):
                    out[o + j] = data[p + j]
                o += size
            else:
                gap = True
            p += size
        out_offsets[d + 1] = o
    return out[:o], out_offsets


@numba.njit(cache=True, nogil=True)
def all_shingle_bounds(data, offsets, n):
    """Shingle byte ranges of every normalised text, flat (m, 2), and per-text offsets into them.

    Text d is data[offsets[d]:offsets[d + 1]], words separated by single spaces; its shingles are
    bounds[doc_offsets[d]:doc_offsets[d + 1]], in order. A text of 1..n-1 words gives one range
    covering all of it; an empty text gives none.
    """
    n_docs = offsets.shape[0] - 1
    ring = np.empty(n, np.int64)
    doc_offsets = np.zeros(n_docs + 1, np.int64)
    for d in range(n_docs):  # first pass: how many shingles each text has
        start, end = offsets[d], offsets[d + 1]
        words = 0
        if end > start:
            words = 1
            for p in range(start, end):
                if data[p] == _SPACE:
                    words += 1
        doc_offsets[d + 1] = doc_offsets[d] + (0 if words == 0 else max(words - n + 1, 1))
    bounds = np.empty((doc_offsets[n_docs], 2), np.int64)
    for d in range(n_docs):  # second pass: the ranges; `ring` holds the last n word starts
        start, end, m = offsets[d], offsets[d + 1], doc_offsets[d]
        if doc_offsets[d + 1] - m == 1:  # short text or exactly n words: one range, all of it
            bounds[m, 0], bounds[m, 1] = start, end
            continue
        word, word_start = 0, start
        for p in range(start, end + 1):
            if p == end or data[p] == _SPACE:
                ring[word % n] = word_start
                if word >= n - 1:
                    bounds[m, 0], bounds[m, 1] = ring[(word - n + 1) % n], p
                    m += 1
                word += 1
                word_start = p + 1
    return bounds, doc_offsets


@numba.njit(cache=True, inline="always")
def _fmix32(h):
    # datasketch's pre-mix for the affine schemes: the MurmurHash3 32-bit finalizer.
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK32
    return h ^ (h >> 16)


@numba.njit(cache=True, inline="always")
def _fold(row, h, a, b, legacy):
    """row[k] = min(row[k], permutation k of shingle hash h) for every k."""
    if legacy:
        hu = np.uint64(h & _MASK32)  # sha1_hash32
        for k in range(row.shape[0]):
            v = a[k] * hu + b[k]  # uint64, wraps like numpy does in datasketch
            v = (v & np.uint64(_MERSENNE)) + (v >> np.uint64(61))  # v mod (2^61 - 1), one fold ...
            if v >= np.uint64(_MERSENNE):  # ... and one subtraction, since v < 2^64
                v -= np.uint64(_MERSENNE)
            v &= np.uint64(_MASK32)
            if v < row[k]:
                row[k] = v
    else:
        hu = np.uint32(_fmix32(h & _MASK32))
        for k in range(row.shape[0]):
            v = np.uint32(a[k] * hu + b[k])  # product mod 2^32: the affine32 permutation
            if v < row[k]:
                row[k] = v


@numba.njit(cache=True, nogil=True)
def signatures_kernel(data, offsets, n, a, b, legacy, out):
    """Fill out[d] with the MinHash of document d; returns each document's shingle count."""
    bounds, doc_offsets = all_shingle_bounds(data, offsets, n)
    hashes = sha1_prefix64_many(data, bounds)
    for d in range(out.shape[0]):
        row = out[d]
        for s in range(doc_offsets[d], doc_offsets[d + 1]):
            _fold(row, np.int64(hashes[s] & np.uint64(_MASK32)), a, b, legacy)
    return doc_offsets[1:] - doc_offsets[:-1]


@numba.njit(cache=True, nogil=True)
def shingle_hash_kernel(data, offsets, n):
    """sha1_hash64 of every shingle of every document, flat, with per-document offsets."""
    bounds, doc_offsets = all_shingle_bounds(data, offsets, n)
    return sha1_prefix64_many(data, bounds), doc_offsets
