"""One input unit through the document stages: read → extract → langid → quality → rows.

`process_unit` is what a worker process runs. It never raises for bad input: every record the
reader yields leaves as exactly one document row or one rejection row, and per-stage counts and
times come back with them. Committing (and exact dedup across inputs) happens in the parent, in
input order, so a build is deterministic whatever order the workers finish in.
"""

from __future__ import annotations

import time
import traceback
from collections import defaultdict
from dataclasses import dataclass, field

import pyarrow as pa

from pipeline.config import BuildConfig
from pipeline.extract import Extractor
from pipeline.langid import LanguageIdentifier
from pipeline.quality import Q_COLUMNS, QualityFilter
from pipeline.readers import InputUnit, read_unit
from pipeline.records import RawRecord, Rejection
from pipeline.textnorm import normalized_text_hash
from warehouse.schema import REJECTS_SCHEMA, STAGES_SCHEMA, docs_schema

STAGES = ("read", "extract", "langid", "quality")
DOCS_SCHEMA = docs_schema(Q_COLUMNS)


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
    stages: dict[str, StageCounter] = field(default_factory=lambda: defaultdict(StageCounter))
    seconds: float = 0.0

    @property
    def records(self) -> int:
        return len(self.docs) + len(self.rejects)

    def docs_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.docs, schema=DOCS_SCHEMA)

    def rejects_table(self) -> pa.Table:
        return pa.Table.from_pylist(self.rejects, schema=REJECTS_SCHEMA)

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
    """The per-record stages, built once per worker process (the fastText model loads once)."""

    def __init__(self, cfg: BuildConfig):
        self.cfg = cfg
        self.extract = Extractor(cfg.extract)
        self.langid = LanguageIdentifier(cfg.langid)
        self.quality = QualityFilter(cfg.quality)

    def process_unit(self, unit: InputUnit) -> UnitOutput:
        """Read and process one input; never raises for bad input."""
        out = UnitOutput(unit)
        started = time.perf_counter()
        records = read_unit(unit, self.cfg.read)
        read = out.stages["read"]
        while True:
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
            result = self._process_record(item, out)
            if isinstance(result, Rejection):
                out.rejects.append(rejection_row(result))
            else:
                out.docs.append(result)
        out.seconds = time.perf_counter() - started
        return out

    def _process_record(self, record: RawRecord, out: UnitOutput) -> dict | Rejection:
        stage = "extract"
        try:
            t0 = time.perf_counter()
            out.stages[stage].records_in += 1
            extracted = self.extract(record)
            t1 = time.perf_counter()
            out.stages[stage].seconds += t1 - t0
            if isinstance(extracted, Rejection):
                out.stages[stage].dropped += 1
                return extracted

            stage = "langid"
            out.stages[stage].records_in += 1
            lang, lang_score = self.langid.predict(extracted.text)
            reason = self.langid.reject_reason(lang, lang_score)
            t2 = time.perf_counter()
            out.stages[stage].seconds += t2 - t1
            if reason is not None:
                out.stages[stage].dropped += 1
                return Rejection.of(record, stage, reason, f"{lang} {lang_score:.3f}", extracted.text)

            stage = "quality"
            out.stages[stage].records_in += 1
            quality = self.quality(extracted.text)
            out.stages[stage].seconds += time.perf_counter() - t2
            if quality.reason is not None:
                out.stages[stage].dropped += 1
                return Rejection.of(record, stage, quality.reason, quality.detail, quality.text)
        except Exception as exc:  # a bug or a pathological record must not take the whole input down
            out.stages[stage].dropped += 1
            detail = f"{type(exc).__name__}: {exc} | {traceback.format_exc(limit=-1).strip().splitlines()[-2]}"
            return Rejection.of(record, stage, "internal_error", detail)

        text = quality.text
        return {
            "id": record.id,
            "url": record.url,
            "source": record.source,
            "source_offset": record.source_offset,
            "fetched_at": record.fetched_at,
            "title": extracted.title or record.title,
            "published_at": extracted.date,
            "text": text,
            "lang": lang,
            "lang_score": lang_score,
            "n_chars": len(text),
            "n_words": len(text.split()),
            **quality.signals,
            "quality_score": None,
            "dup_cluster": None,
            "text_hash": normalized_text_hash(text),
        }
