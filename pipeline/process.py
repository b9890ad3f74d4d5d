"""One input unit through the document stages: read → extract → langid → quality → rows.

`process_unit` is what a worker process runs. It never raises for bad input: every record the
reader yields leaves as exactly one document row or one rejection row, and per-stage counts and
times come back with them. The stages follow one protocol (`pipeline.stage.Stage`); the list is
`document_stages`. Committing (and exact dedup across inputs) happens in the parent, in
input order, so a build is deterministic whatever order the workers finish in.
"""

from __future__ import annotations

import itertools
import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from pipeline.config import BuildConfig
from pipeline import pii
from pipeline.extract import ExtractStage
from pipeline.langid import LangIdStage
from pipeline.pii import PiiStage
from pipeline.quality import Q_COLUMNS, QualityStage
from pipeline.quality.classifier import ClassifierStage
from pipeline.readers import InputUnit, read_unit
from pipeline.records import Document, RawRecord, Rejection, is_environmental
from pipeline.stage import Stage
from pipeline.textnorm import normalized_text_hash
from pipeline.url_filter import UrlFilterStage
from warehouse.errors import TokenmillError
from warehouse.schema import REJECTS_SCHEMA, STAGES_SCHEMA, docs_schema, filtered_schema

# The signal columns of a document: the quality rules' and the PII redaction counts.
SIGNAL_COLUMNS = [*Q_COLUMNS, *pii.COLUMNS]
DOCS_SCHEMA = docs_schema(SIGNAL_COLUMNS)
FILTERED_SCHEMA = filtered_schema(SIGNAL_COLUMNS)
# Stages whose rejected documents keep their full text with `[quality] keep_rejected_text = true`:
# what an ablation's "all" variant (filters off) trains on besides the kept documents.
FILTER_STAGES = ("quality", "classifier")


def document_stages(cfg: BuildConfig) -> list[Stage]:
    """The per-record stages, in the order a record meets them (after `read`). A new stage
    (`pipeline.stage.Stage`) is one line here."""
    url_filter = UrlFilterStage(cfg.url_filter)
    classifier = cfg.quality.classifier
    return [
        *([url_filter] if url_filter.filter.active else []),  # on the URL, before extraction is paid for
        ExtractStage(cfg.extract),
        LangIdStage(cfg.langid),
        QualityStage(cfg.quality),
        *([ClassifierStage(classifier)] if classifier.model_path is not None else []),  # quality_score
        *([PiiStage(cfg.pii)] if cfg.pii.enabled else []),  # after the rules judged the original text
    ]


@dataclass
class StageCounter:
    records_in: int = 0
    dropped: int = 0
    seconds: float = 0.0


@dataclass
class UnitOutput:
    """What one input produced, ready to commit."""

    unit: InputUnit
    docs: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)
    filtered: list[dict] = field(default_factory=list)  # full rows of quality-rejected documents (opt-in)
    stages: dict[str, StageCounter] = field(default_factory=lambda: defaultdict(StageCounter))
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return len(self.docs) + len(self.rejects)

    def docs_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.docs, schema=DOCS_SCHEMA)

    def rejects_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rejects, schema=REJECTS_SCHEMA)

    def filtered_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.filtered, schema=FILTERED_SCHEMA)

    def stages_table(self, build_id: str) -> pa.Table:
        rows = [
            {
                "source": self.unit.key,
                "build_id": build_id,
                "stage": name,
                "records_in": c.records_in,
                "records_out": c.records_in - c.dropped,
                "dropped": c.dropped,
                "seconds": c.seconds,
            }
            for name, c in self.stages.items()
        ]
        return pa.Table.from_pylist(rows, schema=STAGES_SCHEMA)


def rejection_row(rej: Rejection) -> dict:
    return {
        "id": rej.id,
        "url": rej.url,
        "source": rej.source,
        "source_offset": rej.source_offset,
        "stage": rej.stage,
        "reason": rej.reason,
        "detail": rej.detail,
        "excerpt": rej.excerpt,
    }


class DocumentPipeline:
    """The per-record stages, built once per worker process (the fastText model loads once), and the
    one loop that runs them: it counts, times and turns a stage's rejection into a rejects row."""

    def __init__(self, cfg: BuildConfig):
        self.cfg = cfg
        self.stages = document_stages(cfg)
        self.keep_rejected_text = cfg.quality.keep_rejected_text
        self.scorer = next((s.classifier for s in self.stages if isinstance(s, ClassifierStage)), None)

    def process_unit(self, unit: InputUnit, watch: RecordWatch | None = None) -> UnitOutput:
        """Read and process one input; never raises for bad input. It raises for a failure of the
        environment (`pipeline.records.is_environmental`): that is no verdict about the data.

        `watch` (pipeline.workers) is told which record and stage run, so a supervisor can stop a
        worker stuck in one; it also holds the verdicts on records that stopped a worker before.
        """
        out = UnitOutput(unit)
        started = time.perf_counter()
        records = read_unit(unit, self.cfg.read)
        read = out.stages["read"]
        for index in itertools.count():
            t0 = time.perf_counter()
            try:
                item = next(records)
            except StopIteration:
                read.seconds += time.perf_counter() - t0
                break
            read.seconds += time.perf_counter() - t0
            read.records_in += 1
            if isinstance(item, Rejection):
                read.dropped += 1
                out.rejects.append(rejection_row(item))
                continue
            verdict = watch.verdicts.get(index) if watch is not None else None
            if verdict is not None:
                result = self._known_verdict(Document(item), out, *verdict)
            else:
                result = self._run_stages(Document(item), out, watch, index)
            if isinstance(result, Rejection):
                out.rejects.append(rejection_row(result))
            else:
                out.docs.append(document_row(result))
        out.seconds = time.perf_counter() - started
        return out

    def _known_verdict(self, doc: Document, out: UnitOutput, stage: str, reason: str, detail: str) -> Rejection:
        """The rejection of a record that stopped its worker in an earlier attempt, counted at its stage."""
        for each in self.stages:
            out.stages[each.name].records_in += 1
            if each.name == stage:
                break
        out.stages[stage].dropped += 1
        return Rejection.of(doc.record, stage, reason, detail)

    def _run_stages(self, doc: Document, out: UnitOutput, watch: RecordWatch | None = None,
                    index: int = 0) -> Document | Rejection:
        for position, stage in enumerate(self.stages):
            counter = out.stages[stage.name]
            counter.records_in += 1
            if watch is not None:
                watch.running(index, position)
            t0 = time.perf_counter()
            try:
                result = stage(doc)
            except Exception as exc:  # a bug or a pathological record must not take the whole input down
                if is_environmental(exc):
                    raise  # ... but a lost disk or a missing model file is no verdict on the record
                result = internal_error(doc, stage.name, exc)
            counter.seconds += time.perf_counter() - t0
            if isinstance(result, Rejection):
                counter.dropped += 1
                if self.keep_rejected_text and stage.name in FILTER_STAGES and result.reason != "internal_error":
                    out.filtered.append(self._filtered_row(doc, result))
                break
            doc = result
        if watch is not None:
            watch.idle()
        return result

    def _filtered_row(self, doc: Document, rejection: Rejection) -> dict:
        """The full row of a document a quality rule or the classifier rejected, scored when a
        classifier is configured (so an ablation can filter the unfiltered corpus by score too)."""
        if doc.quality_score is None and self.scorer is not None:
            doc.quality_score = self.scorer.score(doc.text)
        return {**document_row(doc), "stage": rejection.stage, "reason": rejection.reason}

    def check(self) -> None:
        """Run every stage once on a probe page, so a missing or broken model, or a setting a stage
        cannot use, fails the build with one line before any input is read."""
        probe = Document(RawRecord(source="(probe)", source_offset=0, kind="html", body=_PROBE_PAGE))
        for stage in self.stages:
            try:
                result = stage(probe)
            except Exception as exc:  # noqa: BLE001 - any failure here is the setup's, not the data's
                raise PipelineUnusable(f"the {stage.name} stage cannot run: {type(exc).__name__}: "
                                       f"{' '.join(str(exc).split())}") from exc
            if isinstance(result, Rejection):
                break
            probe = result


class PipelineUnusable(TokenmillError):
    """A stage that fails on a plain page: its model, file or setting is unusable (one line)."""


class RecordWatch(Protocol):
    """Where a worker says what it runs (see pipeline.workers)."""

    verdicts: dict[int, tuple[str, str, str]]  # record index -> (stage, reason, detail)

    def running(self, index: int, stage: int) -> None: ...

    def idle(self) -> None: ...


_PROBE_PAGE = ("<html><head><title>Probe</title></head><body><article>" + "<p>The pipeline reads this page "
               "once before a build, so that a broken model or setting stops the build at once and clearly. "
               "It is a short page of plain English prose with the words that the quality rules count.</p>" * 6
               + "</article></body></html>").encode()


def internal_error(doc: Document, stage: str, exc: Exception) -> Rejection:
    """The rejection of a record whose stage raised: the one place an exception becomes a rejects row."""
    where = "".join(traceback.format_exception(exc, limit=-1)).strip().splitlines()[-2]
    detail = f"{type(exc).__name__}: {exc} | {where}"
    return Rejection.of(doc.record, stage, "internal_error", detail)


def document_row(doc: Document) -> dict:
    """The docs row of a document every stage kept."""
    record, text = doc.record, doc.text
    return {
        "id": record.id,
        "url": record.url,
        "source": record.source,
        "source_offset": record.source_offset,
        "fetched_at": record.fetched_at,
        "title": doc.title,
        "published_at": doc.published_at,
        "text": text,
        "lang": doc.lang,
        "lang_score": doc.lang_score,
        "n_chars": len(text),
        "n_words": len(text.split()),
        **doc.signals,
        "quality_score": doc.quality_score,
        "dup_cluster": None,
        "text_hash": normalized_text_hash(text),
    }
