"""Heuristic quality filtering: FineWeb's recipe of Gopher, C4 and FineWeb rules, as signal columns.

`QualityFilter(cfg)(text)` runs, in the order datatrove 0.10.1 runs the FineWeb recipe:
GopherRepetitionFilter -> GopherQualityFilter -> C4QualityFilter (no terminal-punctuation rule)
-> FineWebQualityFilter. The first failing rule gives the reason ("gopher_repetition:dup_line_frac",
"gopher_quality:min_doc_words", "c4:lorem_ipsum", "fineweb:line_punct_ratio", ...) and the later
rules are not run. C4 rewrites the text (drops lines, removes citations); FineWeb judges the
rewritten text, and the result carries it.

The text is tokenised once (`words.split_document`) and every rule reads that. Each measured value
is a `q_*` signal; `Q_COLUMNS` names them all, in a fixed order, whatever rules are enabled: a
disabled rule, or one not reached because an earlier rule rejected the document, gives None.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import QualityConfig
from pipeline.quality import c4, fineweb, gopher_quality, gopher_repetition
from pipeline.quality.words import split_document
from pipeline.records import Document, Rejection
from pipeline.stage import Stage

Q_COLUMNS: list[str] = [*gopher_repetition.COLUMNS, *gopher_quality.COLUMNS, *c4.COLUMNS, *fineweb.COLUMNS]


@dataclass(slots=True)
class QualityResult:
    """`text`: the document as kept (C4's rewrite); `signals`: every Q_COLUMNS key, float or None;
    `reason`: None when kept, else "<rule>:<check>"; `detail`: measured value against threshold."""

    text: str
    signals: dict[str, float | None]
    reason: str | None
    detail: str


class QualityFilter:
    """Computes the quality signals of a document and says whether the recipe keeps it."""

    def __init__(self, cfg: QualityConfig):
        self.cfg = cfg
        gopher_repetition.validate(cfg.gopher_repetition)
        c4.validate(cfg.c4)
        self._any_enabled = any(
            section.enabled for section in (cfg.gopher_repetition, cfg.gopher_quality, cfg.c4, cfg.fineweb)
        )

    def __call__(self, text: str) -> QualityResult:
        signals: dict[str, float | None] = dict.fromkeys(Q_COLUMNS)
        if not self._any_enabled:
            return QualityResult(text, signals, None, "")
        cfg = self.cfg
        doc = split_document(text)
        for name, rule, section in (
            ("gopher_repetition", gopher_repetition, cfg.gopher_repetition),
            ("gopher_quality", gopher_quality, cfg.gopher_quality),
        ):
            if section.enabled:
                measured, reason, detail = rule.check(doc, section)
                signals.update(measured)
                if reason is not None:
                    return QualityResult(text, signals, f"{name}:{reason}", detail)
        if cfg.c4.enabled:
            measured, reason, detail, doc = c4.check(doc, cfg.c4)
            signals.update(measured)
            if reason is not None:
                return QualityResult(text, signals, f"c4:{reason}", detail)
        if cfg.fineweb.enabled:
            measured, reason, detail = fineweb.check(doc, cfg.fineweb)
            signals.update(measured)
            if reason is not None:
                return QualityResult(doc.text, signals, f"fineweb:{reason}", detail)
        return QualityResult(doc.text, signals, None, "")


class QualityStage(Stage):
    """The quality stage (`pipeline.stage` protocol): the q_* signals, and C4's rewrite of the text."""

    name = "quality"

    def __init__(self, cfg: QualityConfig):
        self.filter = QualityFilter(cfg)

    def __call__(self, doc: Document) -> Document | Rejection:
        result = self.filter(doc.text)
        doc.signals = result.signals  # also on a rejected document: its `filtered` row shows why
        if result.reason is not None:
            return self.reject(doc, result.reason, result.detail, result.text)
        doc.text = result.text
        return doc


__all__ = ["Q_COLUMNS", "QualityFilter", "QualityResult", "QualityStage"]
