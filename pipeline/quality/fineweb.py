"""FineWeb's own quality rules (Penedo et al. 2024) as datatrove 0.10.1's FineWebQualityFilter.

In: a document split once (`DocumentWords`; in the full recipe, the text C4 rewrote) and the
`FineWebConfig`. Out: the signals, and the first rule that fails with a detail for a person.
Lines are the text's "\\n"-separated lines that are not blank.

Signals:
- q_fineweb_line_punct_ratio: lines ending in terminal punctuation (".", "!", "?" and their
  equivalents in other scripts), by default also when closing quotes or brackets follow it
  ('...enough."'; line_punct_after_closing=false is datatrove's last-character rule); rejects
  below line_punct_thr (unless 0 and line_punct_exclude_zero);
- q_fineweb_short_line_ratio: lines of at most short_line_length characters; rejects above
  short_line_thr;
- q_fineweb_char_dup_ratio: characters in lines repeating an earlier line, over all non-newline
  characters; rejects above char_duplicates_ratio;
- q_fineweb_newline_ratio: newlines per word; rejects above new_line_ratio (list-like pages).

Reason codes (datatrove's in brackets): empty, line_punct_ratio, short_line_ratio,
char_dup_ratio, new_line_ratio (list_ratio).
"""

from __future__ import annotations

from pipeline.config import FineWebConfig
from pipeline.quality.gopher_repetition import duplicates
from pipeline.quality.words import CLOSING_QUOTES_BRACKETS, TERMINAL_PUNCTUATION, DocumentWords

_CLOSING_OR_SPACE = CLOSING_QUOTES_BRACKETS + " \t\r"

COLUMNS = [
    "q_fineweb_line_punct_ratio",
    "q_fineweb_short_line_ratio",
    "q_fineweb_char_dup_ratio",
    "q_fineweb_newline_ratio",
]


def check(doc: DocumentWords, cfg: FineWebConfig) -> tuple[dict[str, float | None], str | None, str]:
    """Signals, the first failing rule's reason (None when the document passes) and its detail."""
    text = doc.text
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        return dict.fromkeys(COLUMNS), "empty", "no non-blank line"
    n_lines = len(lines)
    # every terminal punctuation mark is one character, so a set lookup replaces endswith(tuple)
    if cfg.line_punct_after_closing:
        ends = (line.rstrip(_CLOSING_OR_SPACE)[-1:] for line in lines)
        n_punct_end = sum(1 for end in ends if end in TERMINAL_PUNCTUATION)
    else:
        n_punct_end = sum(1 for line in lines if line[-1] in TERMINAL_PUNCTUATION)
    n_short = sum(1 for line in lines if len(line) <= cfg.short_line_length)
    _, dup_chars = duplicates(lines)
    signals: dict[str, float | None] = {
        "q_fineweb_line_punct_ratio": n_punct_end / n_lines,
        "q_fineweb_short_line_ratio": n_short / n_lines,
        "q_fineweb_char_dup_ratio": dup_chars / (len(text) - text.count("\n")),
        "q_fineweb_newline_ratio": text.count("\n") / len(doc.words) if doc.words else 0.0,
    }
    punct = signals["q_fineweb_line_punct_ratio"]
    if punct < cfg.line_punct_thr and not (punct == 0 and cfg.line_punct_exclude_zero):
        return signals, "line_punct_ratio", f"line_punct_ratio {punct:.4g} < {cfg.line_punct_thr}"
    checks = [
        ("short_line_ratio", signals["q_fineweb_short_line_ratio"], cfg.short_line_thr),
        ("char_dup_ratio", signals["q_fineweb_char_dup_ratio"], cfg.char_duplicates_ratio),
        ("new_line_ratio", signals["q_fineweb_newline_ratio"], cfg.new_line_ratio),
    ]
    for reason, value, limit in checks:
        if value > limit:
            return signals, reason, f"{reason} {value:.4g} > {limit}"
    return signals, None, ""
