"""A small warehouse dataset made of real text, built through the real per-record pipeline and
commit path (no Prefect, no near dedup), for tests of what reads datasets back.

`build_from_texts(root, name, docs)` writes `docs` ((url, text) pairs) as one JSONL input, runs it
through `DocumentPipeline` (quality rules included) with exact dedup, commits it as one shard and
records a build row; it returns the dataset's paths and the build id.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from flows.build_steps import group_tables, unit_tables
from pipeline.config import BuildConfig
from pipeline.exact_dedup import ExactDeduplicator
from pipeline.process import DOCS_SCHEMA, DocumentPipeline
from pipeline.readers import expand_inputs
from warehouse import commit
from warehouse.layout import DatasetPaths


def wikitext_paragraphs(shared_data: Path, count: int, skip: int = 0) -> list[str]:
    """Long paragraphs of WikiText-2 (validation), in file order: real English prose that passes
    the quality rules."""
    lines = (shared_data / "prose" / "wikitext2_valid.txt").read_text(encoding="utf-8").split("\n")
    paragraphs = [line.strip() for line in lines if len(line) > 600 and not line.strip().startswith("=")]
    return paragraphs[skip : skip + count]


def gutenberg_paragraphs(shared_data: Path, book: str, count: int) -> list[str]:
    """The longest paragraphs of a Project Gutenberg book, each unwrapped to one line."""
    text = (shared_data / "prose" / "gutenberg" / book).read_text(encoding="utf-8")
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    return sorted(paragraphs, key=len, reverse=True)[:count]


def build_from_texts(root: Path, name: str, docs: list[tuple[str | None, str]],
                     cfg: BuildConfig | None = None) -> tuple[DatasetPaths, str]:
    cfg = cfg or BuildConfig(workers=1)
    ds = DatasetPaths(str(root), name)
    source = root / f"{name}-input.jsonl"
    source.write_text("".join(json.dumps({"url": url, "text": text}) + "\n" for url, text in docs), encoding="utf-8")
    build_id = commit.new_build_id()
    started = commit.now()
    (unit,) = expand_inputs([str(source)])
    out = DocumentPipeline(cfg).process_unit(unit)
    tables = group_tables([(out, unit_tables(out, build_id))], ExactDeduplicator.for_dataset(ds), build_id)
    commit.commit_shard(ds, [unit.key], tables["docs"], tables["rejects"], tables["stages"],
                        tables["shard"], DOCS_SCHEMA)
    commit.record_build(ds, {
        "build_id": build_id, "started_at": started, "finished_at": commit.now(), "inputs": 1,
        "inputs_skipped": 0, "docs_version": commit.table_version(ds.docs),
        "rejects_version": commit.table_version(ds.rejects), "config_json": cfg.model_dump_json(),
        "code_version": "test",
    })
    return ds, build_id
