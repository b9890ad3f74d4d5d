"""Deterministic choices by hash: which documents are validation, and which text trains the tokenizer.

A document (or block of a text file) is chosen when the 64-bit xxhash of its key, salted per
purpose, falls under a rate. The choice depends only on the key, never on the order of reading,
the number of workers or a random seed, so the same inputs always give the same split and the same
sample, and a hash sample is an unbiased sample of the whole corpus (not its first files).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import xxhash

from tokenizer.train import MAX_SENTENCE_BYTES

HASH_RANGE = 2**64
VAL_SALT = "tokenmill/val/"
SAMPLE_SALT = "tokenmill/tokenizer-sample/"
# A character is at most 4 UTF-8 bytes: sentences cut to this many characters always fit
# SentencePiece's max_sentence_length (longer ones it would silently skip).
MAX_SENTENCE_CHARS = MAX_SENTENCE_BYTES // 4


def key_hash(salt: str, key: str) -> int:
    return xxhash.xxh64_intdigest((salt + key).encode("utf-8"))


def threshold(rate: float) -> int:
    """Hashes below this value are chosen with probability `rate` (0 <= rate <= 1)."""
    return min(HASH_RANGE, int(rate * HASH_RANGE))


def training_sentences(text: str) -> Iterator[str]:
    """The non-empty lines of a text, long lines cut into pieces SentencePiece accepts.

    Lines, because SentencePiece learns from sentences and "\\n" is a piece of its own.
    """
    for line in text.split("\n"):
        for start in range(0, len(line), MAX_SENTENCE_CHARS):
            yield line[start : start + MAX_SENTENCE_CHARS]


class BoundedSample:
    """Iterates sentences from `texts` until `max_bytes` of UTF-8 have been given out.

    After iteration, `n_bytes` and `n_sentences` say how much of the sample was used.
    """

    def __init__(self, texts: Iterable[str], max_bytes: int, progress=None):
        self.texts, self.max_bytes, self.progress = texts, max_bytes, progress
        self.n_bytes = 0
        self.n_sentences = 0

    def __iter__(self) -> Iterator[str]:
        for text in self.texts:
            for sentence in training_sentences(text):
                size = len(sentence.encode("utf-8"))
                if self.n_bytes + size > self.max_bytes:
                    return
                self.n_bytes += size
                self.n_sentences += 1
                if self.progress is not None:
                    self.progress.update(size)
                yield sentence
