"""Exact duplicates across a whole dataset: the first document with a given normalised text wins.

"First" is commit order, which is input order (see flows.build_corpus), so the survivor is the
same on every run. There is no index in memory: each input's hashes are joined against the
`text_hash` column of the committed docs table (a streaming Polars scan that keeps only the
matches), so memory follows the size of one input, not of the dataset, and a later build also
drops copies of documents kept by earlier ones. The build resolves each commit group's documents
at once (`resolve`: one read per commit, not per input). A caller splitting input by input before
one commit holds the documents split but not yet committed in `pending` (`remember`) until
`committed()` is called.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from warehouse.layout import DatasetPaths
from warehouse.schema import rejects_from_docs
from warehouse.storage import find_delta, scan_delta


MATCHES = {"text_hash": pl.Int64, "first": pl.String}


class ExactDeduplicator:
    def __init__(self, docs_path: str | None = None):
        self.docs_path = docs_path  # None: no committed documents to compare with
        self.pending = pl.DataFrame(schema=MATCHES)  # (text_hash, first) kept but not yet committed

    @classmethod
    def for_dataset(cls, ds: DatasetPaths) -> "ExactDeduplicator":
        return cls(ds.docs)

    def committed_matches(self, hashes: pl.Series) -> pl.DataFrame:
        """(text_hash, first): the id of the committed document with each of these hashes, if any."""
        if self.docs_path is None or hashes.is_empty() or find_delta(self.docs_path) is None:
            return pl.DataFrame(schema=MATCHES)
        return (
            scan_delta(self.docs_path)
            .select("text_hash", pl.col("id").alias("first"))
            .filter(pl.col("text_hash").is_in(hashes.unique().implode()))
            .collect(engine="streaming")
        )

    def split(self, docs: pa.Table) -> tuple[pa.Table, pa.Table, pl.DataFrame]:
        """(documents kept, rejection rows for the copies, the kept (text_hash, first) to `remember`).

        Nothing is changed here: the caller `remember`s the kept entries before it splits the next
        input's documents, and calls `committed()` once they are in the docs table.
        """
        resolved = self.resolve(docs)
        return *split_resolved(docs, resolved), kept_entries(resolved)

    def resolve(self, docs: pa.Table) -> pl.DataFrame:
        """Per document, in order: text_hash, id, `first` (the id of the first document with its
        text: committed, pending, or earlier in `docs`) and `kept` (it is that first one). One read
        of the committed hashes for all of `docs`: the build splits a commit group at once."""
        frame = pl.from_arrow(docs.select(["text_hash", "id"]))
        # Who came first, in commit order: committed documents, then pending ones, then this input's.
        earlier = pl.concat([
            self.committed_matches(frame["text_hash"]),
            self.pending,
            frame.select("text_hash", pl.col("id").alias("first")),
        ]).unique("text_hash", keep="first", maintain_order=True)
        return frame.join(earlier, on="text_hash", how="left", maintain_order="left", nulls_equal=True).with_columns(
            # The same id again is a re-commit of the same document (rows a killed run left): kept.
            (pl.col("first") == pl.col("id")).alias("kept")
        )

    def remember(self, entries: pl.DataFrame) -> None:
        """Documents kept by `split` whose commit is still to come."""
        self.pending = pl.concat([self.pending, entries])

    def committed(self) -> None:
        """Everything remembered is in the docs table now, where `split` finds it."""
        self.pending = self.pending.clear()


def split_resolved(docs: pa.Table, resolved: pl.DataFrame) -> tuple[pa.Table, pa.Table]:
    """`docs` as (documents kept, rejection rows for the copies), given `resolve`'s rows for them."""
    kept = resolved["kept"].to_arrow()
    rejects = rejects_from_docs(docs.filter(pc.invert(kept)), "exact_dedup", "exact_duplicate",
                                resolved.filter(~pl.col("kept"))["first"].to_list())
    return docs.filter(kept), rejects


def kept_entries(resolved: pl.DataFrame) -> pl.DataFrame:
    """The (text_hash, first) of the documents `resolve` kept: what `remember` takes."""
    return resolved.filter("kept").select("text_hash", "first")
