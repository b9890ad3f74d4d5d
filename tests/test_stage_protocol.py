"""The per-record stage protocol: the runner counts, times and rejects for every stage, so a new
stage is one class; a stage that raises costs its record an `internal_error` row, not the input."""

from pathlib import Path

import pytest

from pipeline.config import BuildConfig
from pipeline.process import DocumentPipeline
from pipeline.readers import expand_inputs
from pipeline.records import Document, Rejection
from pipeline.stage import Stage

WARC = Path(__file__).resolve().parent.parent / "sample" / "warc" / "bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz"


class RejectLongDocuments(Stage):
    name = "too_long"

    def __call__(self, doc: Document) -> Document | Rejection:
        if len(doc.text) > 2000:
            return self.reject(doc, "over_2000_chars", f"{len(doc.text)} chars")
        return doc


class Crashes(Stage):
    name = "crashes"

    def __call__(self, doc: Document) -> Document | Rejection:
        raise KeyError("a bug in this stage")


@pytest.fixture(scope="module")
def unit():
    return expand_inputs([str(WARC)])[0]


@pytest.fixture(scope="module")
def baseline(unit):
    return DocumentPipeline(BuildConfig()).process_unit(unit)


def test_a_new_stage_is_one_class_and_the_runner_counts_it(unit, baseline):
    pipeline = DocumentPipeline(BuildConfig())
    pipeline.stages.append(RejectLongDocuments())
    out = pipeline.process_unit(unit)

    long_docs = [d for d in baseline.docs if d["n_chars"] > 2000]
    assert long_docs and len(long_docs) < len(baseline.docs)  # the sample has both kinds
    counter = out.stages["too_long"]
    assert (counter.records_in, counter.dropped) == (len(baseline.docs), len(long_docs))
    assert counter.seconds > 0
    rejected = [r for r in out.rejects if r["stage"] == "too_long"]
    assert {r["id"] for r in rejected} == {d["id"] for d in long_docs}
    assert all(r["reason"] == "over_2000_chars" and r["excerpt"] for r in rejected)
    assert out.records == baseline.records  # every record still in exactly one table
    rows = out.stages_table("b").to_pylist()
    assert [r["stage"] for r in rows] == ["read", "extract", "langid", "quality", "pii", "too_long"]


def test_a_stage_that_raises_rejects_the_record_as_internal_error(unit, baseline):
    pipeline = DocumentPipeline(BuildConfig())
    pipeline.stages.append(Crashes())
    out = pipeline.process_unit(unit)

    assert out.docs == []
    crashed = [r for r in out.rejects if r["stage"] == "crashes"]
    assert len(crashed) == len(baseline.docs)
    assert all(r["reason"] == "internal_error" and r["detail"].startswith("KeyError: 'a bug in this stage' | ")
               and r["detail"].endswith("raise KeyError(\"a bug in this stage\")") for r in crashed)
    assert out.stages["crashes"].dropped == len(baseline.docs)
