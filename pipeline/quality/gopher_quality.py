"""Gopher quality rules (Rae et al. 2021) as datatrove 0.10.1's GopherQualityFilter.

In: a document split once (`DocumentWords`) and the `GopherQualityConfig`. Out: the signals, and
the first rule that fails (in datatrove's order) with a detail for a person.

"Words" are the spaCy-style words of `words.py`, punctuation tokens included; a "real word" has
at least one character outside datatrove's punctuation set.

Signals:
- q_gopher_n_words: real words (min_doc_words, max_doc_words);
- q_gopher_mean_word_len: mean length of the real words (min/max_avg_word_length);
- q_gopher_hash_word_ratio, q_gopher_ellipsis_word_ratio: "#" and "..."/"…" occurrences per word,
  punctuation tokens included (both against max_symbol_word_ratio);
- q_gopher_bullet_lines_ratio: lines starting with "•" or "-" (max_bullet_lines_ratio);
- q_gopher_ellipsis_lines_ratio: lines ending with "..." or "…" (max_ellipsis_lines_ratio);
- q_gopher_alpha_words_ratio: real words with a letter over all real words, as the Gopher paper
  defines it (rejects below max_non_alpha_words_ratio). alpha_words_ratio_over="tokens" gives
  datatrove's ratio instead, whose denominator counts punctuation tokens as words, so prose with
  much punctuation (dialogue, tokenised text such as WikiText) scores lower;
- q_gopher_stop_words: how many distinct stop words occur, case-sensitively (min_stop_words).

Reason codes (datatrove's in brackets): min_doc_words (gopher_short_doc), max_doc_words
(gopher_long_doc), min_avg_word_length, max_avg_word_length, hash_word_ratio
(gopher_too_many_hashes), ellipsis_word_ratio, bullet_lines_ratio, ellipsis_lines_ratio,
alpha_words_ratio (gopher_below_alpha_threshold), min_stop_words.
"""

from __future__ import annotations

from collections import Counter

from pipeline.config import GopherQualityConfig
from pipeline.quality.words import PUNCTUATION_CHARS, DocumentWords

COLUMNS = [
    "q_gopher_n_words",
    "q_gopher_mean_word_len",
    "q_gopher_hash_word_ratio",
    "q_gopher_ellipsis_word_ratio",
    "q_gopher_bullet_lines_ratio",
    "q_gopher_ellipsis_lines_ratio",
    "q_gopher_alpha_words_ratio",
    "q_gopher_stop_words",
]

_REAL_WORD, _HAS_ALPHA = 1, 2
# Flags per distinct word, computed once per process (bounded like the tokeniser's cache).
_FLAGS: dict[str, int] = {}
_FLAGS_MAX = 200_000


def _flags(word: str) -> int:
    flags = _FLAGS.get(word)
    if flags is None:
        if len(_FLAGS) >= _FLAGS_MAX:
            _FLAGS.clear()
        flags = (_REAL_WORD if word.strip(PUNCTUATION_CHARS) else 0) | (
            _HAS_ALPHA if any(c.isalpha() for c in word) else 0
        )
        _FLAGS[word] = flags
    return flags


def _ratio(part: float, whole: float) -> float:
    # datatrove divides by zero here (empty documents); a document with no words scores 0.
    return part / whole if whole else 0.0


def check(doc: DocumentWords, cfg: GopherQualityConfig) -> tuple[dict[str, float | None], str | None, str]:
    """Signals, the first failing rule's reason (None when the document passes) and its detail."""
    text = doc.text
    counts = Counter(doc.words)
    n_tokens = len(doc.words)
    n_real = real_chars = n_alpha = n_alpha_real = 0
    for word, count in counts.items():
        flags = _flags(word)
        if flags & _REAL_WORD:
            n_real += count
            real_chars += count * len(word)
            if flags & _HAS_ALPHA:
                n_alpha_real += count
        if flags & _HAS_ALPHA:
            n_alpha += count
    alpha_ratio = _ratio(n_alpha_real, n_real) if cfg.alpha_words_ratio_over == "words" else _ratio(n_alpha, n_tokens)
    lines = doc.lines
    n_bullets = sum(1 for line in lines if line.lstrip().startswith(("•", "-")))
    n_ellipsis_end = sum(1 for line in lines if line.rstrip().endswith(("...", "…")))

    signals: dict[str, float | None] = {
        "q_gopher_n_words": float(n_real),
        "q_gopher_mean_word_len": _ratio(real_chars, n_real),
        "q_gopher_hash_word_ratio": _ratio(text.count("#"), n_tokens),
        "q_gopher_ellipsis_word_ratio": _ratio(text.count("...") + text.count("…"), n_tokens),
        "q_gopher_bullet_lines_ratio": _ratio(n_bullets, len(lines)),
        "q_gopher_ellipsis_lines_ratio": _ratio(n_ellipsis_end, len(lines)),
        "q_gopher_alpha_words_ratio": alpha_ratio,
        "q_gopher_stop_words": float(len(counts.keys() & set(cfg.stop_words))),
    }
    mean_len = signals["q_gopher_mean_word_len"] if n_real else None  # numpy's mean of nothing is nan
    # (reason, value, limit, too_low): datatrove skips a rule whose threshold is None or 0.
    checks = [
        ("min_doc_words", n_real, cfg.min_doc_words, True),
        ("max_doc_words", n_real, cfg.max_doc_words, False),
        ("min_avg_word_length", mean_len, cfg.min_avg_word_length, True),
        ("max_avg_word_length", mean_len, cfg.max_avg_word_length, False),
        ("hash_word_ratio", signals["q_gopher_hash_word_ratio"], cfg.max_symbol_word_ratio, False),
        ("ellipsis_word_ratio", signals["q_gopher_ellipsis_word_ratio"], cfg.max_symbol_word_ratio, False),
        ("bullet_lines_ratio", signals["q_gopher_bullet_lines_ratio"], cfg.max_bullet_lines_ratio, False),
        ("ellipsis_lines_ratio", signals["q_gopher_ellipsis_lines_ratio"], cfg.max_ellipsis_lines_ratio, False),
        ("alpha_words_ratio", signals["q_gopher_alpha_words_ratio"], cfg.max_non_alpha_words_ratio, True),
        ("min_stop_words", signals["q_gopher_stop_words"], cfg.min_stop_words, True),
    ]
    for reason, value, limit, too_low in checks:
        if not limit or value is None:
            continue
        if value < limit if too_low else value > limit:
            return signals, reason, f"{reason} {value:.4g} {'<' if too_low else '>'} {limit}"
    return signals, None, ""
