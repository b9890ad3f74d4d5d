"""Normalised word n-gram shingles: the sets whose Jaccard similarity near-duplicate removal measures.

Normalising folds case, punctuation and whitespace: the text is lowercased (Arrow's Unicode
`utf8_lower`) and every run of characters that are not letters, digits or combining marks (Unicode
categories L*, N*, M*) becomes one space, with none at either end. "Hello,  World!" and
"hello world" give the same words, so a recrawl that changed only quotes, dashes or line breaks
still matches. A shingle is `n` consecutive words joined by single spaces, exactly the bytes of
`" ".join(words[i:i + n])` in UTF-8: that is what gets hashed. A document with fewer than `n`
words has one shingle (all its words); an empty document has none and is never a duplicate.

The batch form works on Arrow buffers in compiled code (numba, `pipeline.dedup.kernels`) and hands
the signature code a byte buffer with offsets, so no Python object is made per word; a regular
expression over the same texts took half the time of the whole signature. `folded_words` is the
plain-Python form for a few documents (`pipeline.dedup.few_docs`), and `shingle_set` the
one-document form that tests and the brute-force ground truth use, built on `normalise`.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc



def is_word_char(char: str) -> bool:
    """Letters, digits and combining marks (Unicode categories L*, N*, M*): what words are made of."""
    return unicodedata.category(char)[0] in "LNM"


@lru_cache(maxsize=1)
def word_char_table() -> np.ndarray:
    """`is_word_char` per Unicode code point, for the compiled kernel (~0.2 s, once)."""
    return np.fromiter((is_word_char(chr(c)) for c in range(0x110000)), np.bool_, count=0x110000)


def lowered_texts(texts: pa.Array | pa.ChunkedArray) -> pa.LargeStringArray:
    """The texts lowercased by Arrow (`utf8_lower`), one array, nulls as empty texts: the first step
    of normalising, the same for the compiled and the plain-Python forms."""
    if isinstance(texts, pa.ChunkedArray):
        texts = pa.concat_arrays(texts.chunks) if texts.num_chunks else pa.array([], pa.large_string())
    return pc.utf8_lower(pc.fill_null(texts.cast(pa.large_string()), ""))


def folded_words(lowered: str) -> list[str]:
    """The normalised words of one lowercased text, in plain Python: `normalise` word for word."""
    fold = {ord(c): " " for c in set(lowered) if not is_word_char(c)}
    return [word for word in lowered.translate(fold).split(" ") if word]


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
    from pipeline.dedup.kernels import fold_kernel

    return fold_kernel(*_string_buffers(lowered_texts(texts)), word_char_table())


def normalise(texts: pa.Array | pa.ChunkedArray | list[str]) -> pa.Array:
    """Lowercased texts with punctuation and whitespace runs folded to single spaces (large_string)."""
    if not isinstance(texts, (pa.Array, pa.ChunkedArray)):
        texts = pa.array(texts, pa.large_string())
    data, offsets = normalised_buffers(texts)
    return pa.LargeStringArray.from_buffers(len(offsets) - 1, pa.py_buffer(offsets), pa.py_buffer(data))


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
