"""Exact duplicates across a whole dataset: the first document with a given normalised text wins.

"First" is commit order, which is input order (see flows.build_corpus), so the survivor is the
same on every run. The index maps text hash → kept id; it is rebuilt from the docs table at the
start of a build, so a later build also drops copies of documents kept by earlier ones.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from warehouse.layout import DatasetPaths
from warehouse.schema import rejects_from_docs


class ExactDeduplicator:
    def __init__(self, seen: dict[int, str] | None = None):
        self.seen: dict[int, str] = seen or {}

    @classmethod
    def for_dataset(cls, ds: DatasetPaths) -> "ExactDeduplicator":
        try:
            table = DeltaTable(ds.docs).to_pyarrow_dataset()
        except TableNotFoundError:
            return cls()
        seen: dict[int, str] = {}
        for batch in table.to_batches(columns=["text_hash", "id"]):
            seen.update(zip(batch.column("text_hash").to_pylist(), batch.column("id").to_pylist()))
        return cls(seen)

    def split(self, docs: pa.Table) -> tuple[pa.Table, pa.Table, dict[int, str]]:
        """(documents kept, rejection rows for the copies, new index entries).

        The index is not changed: the caller `remember`s the new entries before it splits the next
        input's documents (the commit of both may come later, together).
        """
        new: dict[int, str] = {}
        keep, first_ids = [], []
        for text_hash, doc_id in zip(docs.column("text_hash").to_pylist(), docs.column("id").to_pylist()):
            first = self.seen.get(text_hash) or new.setdefault(text_hash, doc_id)
            keep.append(first == doc_id)  # the same id again is a re-commit of the same document
            first_ids.append(first)
        mask = pa.array(keep, pa.bool_())
        copies = docs.filter(pc.invert(mask))
        rejects = rejects_from_docs(copies, "exact_dedup", "exact_duplicate",
                                    [first for first, kept in zip(first_ids, keep) if not kept])
        return docs.filter(mask), rejects, new

    def remember(self, entries: dict[int, str]) -> None:
        self.seen.update(entries)
