"""Gopher repetition rules (Rae et al. 2021, table A1) as datatrove 0.10.1's GopherRepetitionFilter.

In: a document split once (`DocumentWords`) and the `GopherRepetitionConfig`. Out: the signals,
and the first rule that fails (in datatrove's order) with a detail for a person.

Signals (each a fraction of the document's characters unless it says "of lines/paragraphs"):
- q_rep_dup_para_frac / q_rep_dup_line_frac: repeated paragraphs (split on 2+ newlines) / lines
  (split on newlines) over all paragraphs / lines;
- q_rep_dup_para_char_frac / q_rep_dup_line_char_frac: characters in those repeats;
- q_rep_top_{2,3,4}gram: characters of the most frequent word n-gram times its count;
- q_rep_dup_{5..10}gram: characters of word n-grams that repeat an earlier one, counted greedily
  left to right, each counted repeat skipping its own n words (datatrove's `find_all_duplicate`).
The n-gram signals are measured only when the line and paragraph checks pass (they cost most);
otherwise they are None. Sizes other than those listed have no column and are a config error.

Reason codes (datatrove's in brackets when different): dup_para_frac, dup_para_char_frac,
dup_line_frac, dup_line_char_frac, top_2_gram, ..., dup_5_gram (duplicated_5_n_grams), ..., and
empty for an empty document.

The n-grams are hashed, not joined into strings: each word becomes a 64-bit hash and an n-gram
the polynomial combination of its words' hashes, so all n-gram counts come from numpy sorts.
Known divergence: datatrove joins the words of a duplicated n-gram with "" before comparing, so
("ab", "c") and ("a", "bc") count as the same n-gram there and not here.
"""

from __future__ import annotations

import re
from bisect import bisect_left

import numpy as np

from pipeline.config import GopherRepetitionConfig
from pipeline.quality.words import DocumentWords
from warehouse.errors import UsageError

TOP_NGRAM_SIZES = (2, 3, 4)
DUP_NGRAM_SIZES = (5, 6, 7, 8, 9, 10)
COLUMNS = [
    "q_rep_dup_para_frac",
    "q_rep_dup_para_char_frac",
    "q_rep_dup_line_frac",
    "q_rep_dup_line_char_frac",
    *(f"q_rep_top_{n}gram" for n in TOP_NGRAM_SIZES),
    *(f"q_rep_dup_{n}gram" for n in DUP_NGRAM_SIZES),
]

_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_LINE_BREAK = re.compile(r"\n+")
# Odd multiplier of the polynomial n-gram hash; arithmetic wraps modulo 2**64.
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def validate(cfg: GopherRepetitionConfig) -> None:
    """Raise UsageError for an n-gram size that has no signal column."""
    for n, _ in cfg.top_n_grams:
        if n not in TOP_NGRAM_SIZES:
            raise UsageError(f"gopher_repetition.top_n_grams: n={n} not supported (use {TOP_NGRAM_SIZES})")
    for n, _ in cfg.dup_n_grams:
        if n not in DUP_NGRAM_SIZES:
            raise UsageError(f"gopher_repetition.dup_n_grams: n={n} not supported (use {DUP_NGRAM_SIZES})")


def duplicates(items: list[str]) -> tuple[int, int]:
    """(number of items equal to an earlier item, their total characters)."""
    seen: set[str] = set()
    count = chars = 0
    for item in items:
        if item in seen:
            count += 1
            chars += len(item)
        else:
            seen.add(item)
    return count, chars


def _ngram_signals(words: list[str], sizes: set[int], text_len: int) -> dict[int, float]:
    """Character fractions per n-gram size: the top n-gram's for 2-4, the greedy repeats' for 5-10."""
    out: dict[int, float] = {}
    n_words = len(words)
    if not sizes or n_words == 0:
        return {n: 0.0 for n in sizes}
    # hash() of str is salted per process but stable within it, which is all counting needs.
    hashes = np.fromiter(map(hash, words), dtype=np.int64, count=n_words).view(np.uint64)
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=n_words)
    cum_len = np.concatenate(([0], np.cumsum(lengths)))
    grams = hashes
    no_repeats = False  # once no n-gram repeats, no longer one can either
    for n in range(2, max(sizes) + 1):
        count = n_words - n + 1
        if count <= 0:
            for m in range(n, max(sizes) + 1):
                if m in sizes:
                    out[m] = 0.0
            break
        grams = grams[:-1] * _MULTIPLIER + hashes[n - 1 :]
        if n not in sizes:
            continue
        if no_repeats and n in DUP_NGRAM_SIZES:
            out[n] = 0.0
            continue
        order = np.argsort(grams)
        ordered = grams[order]
        is_first = np.empty(count, dtype=bool)
        is_first[0] = True
        np.not_equal(ordered[1:], ordered[:-1], out=is_first[1:])
        chars = cum_len[n : n + count] - cum_len[:count]  # characters of each n-gram, no spaces
        starts = np.flatnonzero(is_first)
        # position of the first occurrence of each distinct n-gram
        group_first = np.minimum.reduceat(order, starts)
        if n in TOP_NGRAM_SIZES:
            # Counter.most_common(1): highest count, ties to the n-gram seen first; the string
            # datatrove measures is the words joined by spaces.
            counts = np.diff(np.append(starts, count))
            best = counts.max()
            first_pos = group_first[counts == best].min()
            out[n] = float(best * (chars[first_pos] + n - 1)) / text_len
            if best == 1:
                no_repeats = True
        else:
            if starts.size == count:
                no_repeats = True
                out[n] = 0.0
                continue
            first = np.empty(count, dtype=np.int64)
            first[order] = group_first[np.cumsum(is_first) - 1]
            out[n] = _greedy_repeat_chars(first, chars, n) / text_len
    return out


def _greedy_repeat_chars(first: np.ndarray, chars: np.ndarray, n: int) -> int:
    """datatrove's find_all_duplicate, visiting only the n-grams that occurred before.

    datatrove walks the n-grams left to right with a set of those seen: an n-gram already in the
    set counts its characters and the walk jumps n positions (the n-grams jumped over are never
    added); any other n-gram is added. A first occurrence can never count, so only the repeats
    need visiting: a repeat counts when an earlier occurrence of its n-gram was not jumped over.
    `first[i]` is the position of the first occurrence of n-gram i.
    """
    repeats = np.flatnonzero(first != np.arange(first.size))
    first_of = first[repeats].tolist()
    char_list = chars[repeats].tolist()
    added: set[int] = set()  # n-grams (by first position) with an occurrence in the set
    jumps: list[int] = []  # positions that counted, each hiding the n - 1 positions after it
    resume = 0  # first position the walk visits after the last jump
    total = 0
    for position, gram, gram_chars in zip(repeats.tolist(), first_of, char_list, strict=True):
        if position < resume:
            continue
        if gram not in added:
            added.add(gram)
            # The first occurrence was added unless the last jump before it hid it; if it was
            # hidden, this occurrence is the one added and does not count.
            k = bisect_left(jumps, gram) - 1
            if k >= 0 and gram < jumps[k] + n:
                continue
        total += gram_chars
        jumps.append(position)
        resume = position + n
    return total


def check(doc: DocumentWords, cfg: GopherRepetitionConfig) -> tuple[dict[str, float | None], str | None, str]:
    """Signals, the first failing rule's reason (None when the document passes) and its detail."""
    text = doc.text
    if not text:
        return dict.fromkeys(COLUMNS), "empty", "empty document"
    text_len = len(text)
    paragraphs = _PARAGRAPH_BREAK.split(text.strip())
    para_dups, para_chars = duplicates(paragraphs)
    lines = _LINE_BREAK.split(text)
    line_dups, line_chars = duplicates(lines)
    signals: dict[str, float | None] = dict.fromkeys(COLUMNS)
    signals["q_rep_dup_para_frac"] = para_dups / len(paragraphs)
    signals["q_rep_dup_para_char_frac"] = para_chars / text_len
    signals["q_rep_dup_line_frac"] = line_dups / len(lines)
    signals["q_rep_dup_line_char_frac"] = line_chars / text_len
    # datatrove skips a line or paragraph check whose threshold is None or 0.
    for reason, limit in (
        ("dup_para_frac", cfg.dup_para_frac),
        ("dup_para_char_frac", cfg.dup_para_char_frac),
        ("dup_line_frac", cfg.dup_line_frac),
        ("dup_line_char_frac", cfg.dup_line_char_frac),
    ):
        value = signals[f"q_rep_{reason}"]
        if limit and value > limit:
            return signals, reason, f"{reason} {value:.4g} > {limit}"

    # The n-grams cost most, so, as in datatrove, they are measured only for documents that
    # passed the line and paragraph checks; a rejected document leaves their signals None.
    ngram = _ngram_signals(doc.words, {n for n, _ in (*cfg.top_n_grams, *cfg.dup_n_grams)}, text_len)
    for n, _ in cfg.top_n_grams:
        signals[f"q_rep_top_{n}gram"] = ngram[n]
    for n, _ in cfg.dup_n_grams:
        signals[f"q_rep_dup_{n}gram"] = ngram[n]
    for reason, n, limit in (
        *((f"top_{n}_gram", n, limit) for n, limit in cfg.top_n_grams),
        *((f"dup_{n}_gram", n, limit) for n, limit in cfg.dup_n_grams),
    ):
        if ngram[n] > limit:
            return signals, reason, f"{reason} {ngram[n]:.4g} > {limit}"
    return signals, None, ""
