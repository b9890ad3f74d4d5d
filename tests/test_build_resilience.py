"""What a build does when inputs, neighbours or the environment misbehave: bad input becomes
rejects naming file and line, never an aborted build; new files in a built folder are read."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from flows.build_corpus import build_corpus
from pipeline.config import BuildConfig
from warehouse import commit
from warehouse.layout import DatasetPaths
from warehouse.read import scan

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted((REPO / "sample" / "html").glob("*.htm"))
# Near dedup is off where a test counts rows per input: it moves documents between tables.
CFG = BuildConfig(workers=1, dedup={"near": False})


def rows_by_source(ds: DatasetPaths) -> dict[str, int]:
    frames = [scan(ds, t).select("source").collect() for t in ("docs", "rejects")]
    return dict(pl.concat(frames).group_by("source").len().rows())


def test_a_file_added_to_a_built_folder_is_read_by_the_next_build(tmp_path):
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / PAGES[0].name).write_bytes(PAGES[0].read_bytes())
    ds = DatasetPaths(str(tmp_path / "wh"), "d")
    build_corpus([str(folder)], warehouse=ds.root, dataset=ds.name, config=CFG, progress=False)
    (folder / PAGES[1].name).write_bytes(PAGES[1].read_bytes())
    again = build_corpus([str(folder)], warehouse=ds.root, dataset=ds.name, config=CFG, progress=False)
    assert (again.inputs, again.inputs_skipped) == (2, 1)
    assert rows_by_source(ds) == {str(folder / p.name): 1 for p in PAGES[:2]}
    assert commit.committed_sources(ds) == {str(folder / p.name) for p in PAGES[:2]}


def test_a_jsonl_line_with_a_lone_surrogate_is_one_reject_and_the_build_goes_on(tmp_path):
    text = (REPO / "sample" / "README.md").read_text()
    bad = tmp_path / "a_bad.jsonl"
    bad.write_text(json.dumps({"text": text}) + "\n" + '{"text": "a \\ud800 b"}\n')
    after = tmp_path / "b_after.jsonl"
    after.write_text(json.dumps({"text": text + " again"}) + "\n")
    ds = DatasetPaths(str(tmp_path / "wh"), "d")
    build_corpus([str(bad), str(after)], warehouse=ds.root, dataset=ds.name, config=CFG, progress=False)
    assert commit.committed_sources(ds) == {str(bad), str(after)}
    (reject,) = scan(ds, "rejects").filter(pl.col("reason") == "invalid_unicode").collect().iter_rows(named=True)
    assert (reject["source"], reject["source_offset"]) == (str(bad), 1)
    assert "line 2" in reject["detail"]
