"""Normalised word n-gram shingles: the sets whose Jaccard similarity near-duplicate removal measures.

Normalising folds case, punctuation and whitespace: the text is lowercased (Arrow's Unicode
`utf8_lower`) and every run of characters that are not letters, digits or combining marks (Unicode
categories L*, N*, M*) becomes one space, with none at either end. "Hello,  World!" and
"hello world" give the same words, so a recrawl that changed only quotes, dashes or line breaks
still matches. A shingle is `n` consecutive words joined by single spaces, exactly the bytes of
`" ".join(words[i:i + n])` in UTF-8: that is what gets hashed. A document with fewer than `n`
words has one shingle (all its words); an empty document has none and is never a duplicate.

The batch form works on Arrow buffers in compiled code (numba) and hands the signature code a
byte buffer with offsets, so no Python object is made per word; a regular expression over the same
texts took half the time of the whole signature. `shingle_set` is the one-document form that
tests and the brute-force ground truth use, built on the same `normalise`.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SPACE = 0x20


@lru_cache(maxsize=1)
def word_char_table() -> np.ndarray:
    """bool per Unicode code point: True for letters, digits and combining marks (~0.2 s, once)."""
    category = unicodedata.category
    return np.fromiter((category(chr(c))[0] in "LNM" for c in range(0x110000)), np.bool_, count=0x110000)


@numba.njit(cache=True, nogil=True)
def _fold_kernel(data, offsets, is_word_char):
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


def _string_buffers(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, int64 offsets) of a large_string array, without copying."""
    _, offsets, data = texts.buffers()
    offsets = np.frombuffer(offsets, np.int64)[texts.offset : texts.offset + len(texts) + 1]
    data = np.frombuffer(data, np.uint8) if data is not None else np.zeros(1, np.uint8)
    return data, offsets


def normalised_buffers(texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """The normalised texts as one UTF-8 byte buffer and int64 offsets (text d is data[o[d]:o[d+1]]).

    Nulls count as empty texts.
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = pa.concat_arrays(texts.chunks) if texts.num_chunks else pa.array([], pa.large_string())
    lowered = pc.utf8_lower(pc.fill_null(texts.cast(pa.large_string()), ""))
    return _fold_kernel(*_string_buffers(lowered), word_char_table())


def normalise(texts: pa.Array | pa.ChunkedArray | list[str]) -> pa.Array:
    """Lowercased texts with punctuation and whitespace runs folded to single spaces (large_string)."""
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = pa.array(texts, pa.large_string())
    data, offsets = normalised_buffers(texts)
    return pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))


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


def words_of(text: str) -> list[str]:
    """The normalised words of one text."""
    folded = normalise([text])[0].as_py()
    return folded.split(" ") if folded else []


def shingle_set(text: str, n: int = 5) -> set[str]:
    """The set of word n-gram shingles of one text (see module doc for short and empty texts)."""
    words = words_of(text)
    if not words:
        return set()
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set, b: set) -> float:
    """Exact Jaccard similarity of two sets; two empty sets are not similar (0.0)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0
