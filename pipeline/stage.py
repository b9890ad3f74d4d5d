"""The per-record stage protocol: what a document stage is.

A stage is an object with a `name` (the `stage` column of its rejects and stats rows) that takes a
`Document` and returns it (changed or not) or a `Rejection` saying why the record goes no further,
like datatrove's `BaseFilter`. It counts nothing, times nothing and catches nothing: the runner
(`pipeline.process.DocumentPipeline`) does that for every stage in one loop, and turns an exception
a stage raises into an `internal_error` rejection. A new stage is one file with one `Stage` subclass
plus one line in `pipeline.process.document_stages`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from pipeline.records import Document, Rejection


class Stage(ABC):
    """One per-record step. Built once per worker process, so load models in `__init__` (or lazily)."""

    name: ClassVar[str]

    @abstractmethod
    def __call__(self, doc: Document) -> Document | Rejection:
        """The document, with the fields this stage fills, or its rejection (`self.reject`)."""

    def reject(self, doc: Document, reason: str, detail: str = "", excerpt: str | None = None) -> Rejection:
        """The rejection of `doc` at this stage; the excerpt shows `excerpt`, else the text so far
        (before extraction: the record's body)."""
        return Rejection.of(doc.record, self.name, reason, detail, doc.text if excerpt is None else excerpt)
