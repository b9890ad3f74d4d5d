"""Ablation variants: a name and the documents of one build it selects.

FILTER is one of
    all                 documents that survived extraction and language ID: the kept ones plus those
                        the quality rules or the classifier rejected (their full text is in the
                        `filtered` table, kept by a build with `[quality] keep_rejected_text = true`)
    docs                the documents the build kept
    [all|docs] where EXPR,  or just EXPR (on docs)
                        a Polars SQL expression over the docs columns, e.g. `quality_score >= 0.5`
                        or `q_gopher_n_words > 200`
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from warehouse.errors import UsageError
from warehouse.layout import DatasetPaths
from warehouse.read import DatasetNotFound, open_table, scan

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class VariantError(UsageError):
    """A --variant that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Variant:
    name: str
    filter: str

    @classmethod
    def parse(cls, spec: str) -> "Variant":
        name, sep, filter_ = spec.partition("=")
        name, filter_ = name.strip(), filter_.strip()
        if not sep or not filter_ or not _NAME.match(name):
            raise VariantError(f"--variant {spec!r}: expected NAME=FILTER, NAME of letters, digits, . _ -")
        return cls(name, filter_)

    def base_and_condition(self) -> tuple[str, str | None]:
        """("all" | "docs", the SQL condition or None)."""
        words = self.filter.split(None, 2)
        if self.filter in ("all", "docs"):
            return self.filter, None
        if len(words) == 3 and words[0] in ("all", "docs") and words[1].lower() == "where":
            return words[0], words[2]
        return "docs", self.filter


def parse_variants(specs: list[str]) -> list[Variant]:
    variants = [Variant.parse(s) for s in specs]
    if len(variants) < 1:
        raise VariantError("give at least one --variant NAME=FILTER")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise VariantError(f"variant names must differ: {', '.join(names)}")
    return variants


def corpus(ds: DatasetPaths, base: str, docs_version: int) -> pl.LazyFrame:
    """The docs (at `docs_version`), or for "all" the docs plus the quality-rejected documents' full
    text. Exact copies among the rejected ones (never exact-deduplicated) count once."""
    docs = scan(ds, "docs", docs_version)
    if base == "docs":
        return docs
    try:
        open_table(ds, "filtered")
    except DatasetNotFound:
        raise VariantError(
            f"variant filter `all` needs the full text of the documents the quality rules rejected, and "
            f"{ds.base} has none: build it with `[quality] keep_rejected_text = true`"
        ) from None
    columns = docs.collect_schema().names()
    rejected = scan(ds, "filtered").select(columns)
    return pl.concat([docs, rejected], how="vertical_relaxed").unique("text_hash", keep="first", maintain_order=True)


def select(ds: DatasetPaths, variant: Variant, docs_version: int) -> pl.DataFrame:
    """(id, text) of the variant's documents, sorted by id."""
    base, condition = variant.base_and_condition()
    frame = corpus(ds, base, docs_version)
    if condition is not None:
        try:
            frame = frame.filter(pl.sql_expr(condition))
        except Exception as exc:  # polars raises several kinds for a bad expression
            raise VariantError(f"variant {variant.name}: cannot parse {condition!r} as a Polars SQL expression: {exc}") from None
    try:
        return frame.select("id", "text").sort("id").collect()
    except pl.exceptions.PolarsError as exc:
        raise VariantError(f"variant {variant.name} ({variant.filter}): {exc}") from None
