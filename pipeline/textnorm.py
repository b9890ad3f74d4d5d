"""Text normalisation for exact deduplication: two documents are copies when their normal forms match.

Copies of a page seldom match byte for byte: capitalisation, punctuation, full-width or
compatibility characters and line wrapping change between crawls and extractions. The normal
form removes those differences and nothing else:

  NFKC (full-width "Ｈｅｌｌｏ" becomes "Hello", the ligature "ﬁ" becomes "fi") -> lower case ->
  punctuation removed -> runs of whitespace folded to one space, ends trimmed.

Punctuation is every Unicode punctuation character (general category P*) plus the ASCII symbols
of Python's `string.punctuation` ($ + < = > ^ ` | ~); other symbols (©, €, emoji) stay. Both
NFKC and the categories come from the interpreter's `unicodedata`, so a hash is stable for a
given Python version.

`normalized_text_hash` is the 64-bit xxHash (xxh64, seed 0) of the normal form's UTF-8 bytes as a
SIGNED int64, so it fits an Arrow/Parquet int64 column and a Polars Int64 without overflow.
"""

from __future__ import annotations

import string
import unicodedata
from functools import cache

import numpy as np
import xxhash

_INT64_WRAP = 1 << 64
_INT64_MAX = (1 << 63) - 1
_ASCII_PUNCTUATION = string.punctuation.encode("ascii")
# Unicode assigns no punctuation above plane 1 (planes 2-3 hold CJK letters, 14 tags, 15-16
# private use), so the table covers the first two planes.
_PLANES_WITH_PUNCTUATION = 0x20000


@cache
def _is_punctuation() -> np.ndarray:
    """Boolean table over code points: True for punctuation. Built on first use (~50 ms)."""
    table = np.zeros(_PLANES_WITH_PUNCTUATION, dtype=bool)
    table[[c for c in range(_PLANES_WITH_PUNCTUATION) if unicodedata.category(chr(c))[0] == "P"]] = True
    table[list(_ASCII_PUNCTUATION)] = True
    return table


def _remove_punctuation(text: str) -> str:
    if text.isascii():
        return text.encode("ascii").translate(None, _ASCII_PUNCTUATION).decode("ascii")
    # Non-ASCII: look every code point up in the table at once (str.translate or a regex character
    # class cost 100-200 ns per character; this costs a few).
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    table = _is_punctuation()
    punctuation = np.zeros(codes.size, dtype=bool)
    in_table = codes < _PLANES_WITH_PUNCTUATION
    punctuation[in_table] = table[codes[in_table]]
    return codes[~punctuation].tobytes().decode("utf-32-le", "surrogatepass")


def normalize_text(text: str) -> str:
    """The normal form two copies of a document share (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_remove_punctuation(text).split())


def normalized_text_hash(text: str) -> int:
    """xxh64 of the normal form, as a signed 64-bit integer."""
    # surrogatepass: a lone surrogate (from broken input) still hashes, deterministically
    value = xxhash.xxh64_intdigest(normalize_text(text).encode("utf-8", "surrogatepass"))
    return value - _INT64_WRAP if value > _INT64_MAX else value
