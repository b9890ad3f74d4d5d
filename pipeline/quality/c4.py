"""C4 quality rules (Raffel et al. 2020) as datatrove 0.10.1's C4QualityFilter, which rewrites text.

In: a document split once (`DocumentWords`) and the `C4Config`. Out: the signals, the first
failing rule with a detail, and the rewritten document. The rewrite keeps the lines that survive
the line rules, stripped, with Wikipedia-style citations ("[1]", "[edit]", "[citation needed]")
removed, joined by newlines; the FineWeb rules then judge that rewritten text.

Line rules, in datatrove's order (a line that fails one is dropped): a word (whitespace chunk)
longer than max_word_length; no terminal punctuation (off by default, as FineWeb ran C4); fewer
than min_words_per_line words; "javascript"; a cookie or terms-of-use phrase. Document rules: a
surviving line with "lorem ipsum" or "{" rejects the document, and so do fewer than
min_num_sentences sentences over the kept lines (sentences as spaCy's sentencizer splits them).

Signals: q_c4_n_sentences (sentences in the kept lines), q_c4_lines_removed_frac (dropped lines
over all lines); both None when a lorem-ipsum or curly-bracket line stops the scan.
Reason codes (datatrove's in brackets): lorem_ipsum, curly_bracket, min_num_sentences
(too_few_sentences).
"""

from __future__ import annotations

import re

from pipeline.config import C4Config
from pipeline.quality.words import DocumentWords, count_sentences, tokenize
from warehouse.errors import UsageError

COLUMNS = ["q_c4_n_sentences", "q_c4_lines_removed_frac"]

_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_END_PUNCTUATION = (".", "?", "!", '"', "'")
_POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)


def validate(cfg: C4Config) -> None:
    """Raise UsageError for settings this implementation does not reproduce."""
    if not cfg.split_paragraph:
        raise UsageError("c4.split_paragraph=false (C4 rules per sentence) is not supported; use true")


def check(
    doc: DocumentWords, cfg: C4Config
) -> tuple[dict[str, float | None], str | None, str, DocumentWords]:
    """Signals, the failing rule's reason (None when kept), its detail, and the rewritten document."""
    kept_lines: list[str] = []
    kept_chunks: list[list[str]] = []
    kept_words: list[list[str]] = []
    n_sentences = 0
    for raw_line, chunks, words in zip(doc.lines, doc.line_chunks, doc.line_words, strict=True):
        line = raw_line.strip()
        # a word can only be longer than the limit if its line is
        if (
            cfg.max_word_length != -1
            and len(line) > cfg.max_word_length
            and any(len(chunk) > cfg.max_word_length for chunk in chunks)
        ):
            continue
        if cfg.remove_citations and "[" in line:
            without = _CITATION.sub("", line)
            if without != line:
                line, words = without, tokenize(without)
        if cfg.filter_no_terminal_punct and (not line.endswith(_END_PUNCTUATION) or line.endswith("...")):
            continue
        # datatrove counts the line's words before citations were removed
        if len(chunks) < cfg.min_words_per_line:
            continue
        lower = line.lower()
        if cfg.filter_lorem_ipsum and "lorem ipsum" in lower:
            return dict.fromkeys(COLUMNS), "lorem_ipsum", f"line contains 'lorem ipsum': {line[:80]!r}", doc
        if cfg.filter_javascript and "javascript" in lower:
            continue
        if cfg.filter_curly_bracket and "{" in line:
            return dict.fromkeys(COLUMNS), "curly_bracket", f"line contains '{{': {line[:80]!r}", doc
        if cfg.filter_policy and any(phrase in lower for phrase in _POLICY_PHRASES):
            continue
        if cfg.min_num_sentences != -1:
            n_sentences += count_sentences(words)
        kept_lines.append(line)
        kept_chunks.append(chunks)
        kept_words.append(words)

    n_lines = len(doc.lines)
    signals: dict[str, float | None] = {
        "q_c4_n_sentences": float(n_sentences),
        "q_c4_lines_removed_frac": (n_lines - len(kept_lines)) / n_lines if n_lines else 0.0,
    }
    if n_sentences < cfg.min_num_sentences:
        detail = f"min_num_sentences {n_sentences} < {cfg.min_num_sentences}"
        return signals, "min_num_sentences", detail, doc
    # datatrove strips the joined text, which can only touch the first and last kept line.
    text = "\n".join(kept_lines).strip()
    lines = text.split("\n") if text else []
    words = [word for line_words in kept_words for word in line_words]
    return signals, None, "", DocumentWords(text, lines, kept_chunks, kept_words, words)
