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


# The opening of A Tale of Two Cities (Dickens, 1859; public domain): prose every filter keeps.
DICKENS = (REPO / "tests" / "fixtures" / "prose" / "tale_of_two_cities_opening.txt").read_text()


def prose(n: int) -> str:
    """A paragraph every filter keeps, made unique by n."""
    return f"This is document number {n} of the test.\n" + DICKENS


def jsonl_of(path: Path, texts: list[str]) -> str:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return str(path)


def test_a_broken_language_model_stops_the_build_before_any_input_is_read(tmp_path):
    from pipeline.process import PipelineUnusable

    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"text": prose(0)}) + "\n")
    cfg = BuildConfig(workers=1, langid={"model_path": str(tmp_path / "no-such-lid.bin")})
    ds = DatasetPaths(str(tmp_path / "wh"), "d")
    try:
        build_corpus([str(path)], warehouse=ds.root, dataset=ds.name, config=cfg, progress=False)
    except PipelineUnusable as exc:
        assert "langid" in str(exc) and "no-such-lid.bin" in str(exc)
    else:
        raise AssertionError("the build ran with a missing language model")
    assert commit.table_version(ds.rejects) is None  # not one record written off as internal_error


def test_an_input_that_could_not_be_opened_is_not_marked_done_and_the_next_build_reads_it(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jsonl").write_text(json.dumps({"text": prose(1)}) + "\n")
    target = tmp_path / "mounted" / "b.jsonl"
    (folder / "b.jsonl").symlink_to(target)  # its mount is gone for now
    ds = DatasetPaths(str(tmp_path / "wh"), "d")
    summary = build_corpus([str(folder)], warehouse=ds.root, dataset=ds.name, config=CFG, progress=False)
    assert [f.unit.key for f in summary.failed] == [str(folder / "b.jsonl")]
    assert commit.committed_sources(ds) == {str(folder / "a.jsonl")}
    assert rows_by_source(ds) == {str(folder / "a.jsonl"): 1}
    target.parent.mkdir()
    target.write_text(json.dumps({"text": prose(2)}) + "\n")
    again = build_corpus([str(folder)], warehouse=ds.root, dataset=ds.name, config=CFG, progress=False)
    assert (again.inputs_skipped, again.failed) == (1, [])
    assert rows_by_source(ds) == {str(folder / "a.jsonl"): 1, str(folder / "b.jsonl"): 1}


def test_retry_failed_reads_again_an_input_that_ended_in_a_read_error(tmp_path):
    import gzip

    lines = "".join(json.dumps({"text": prose(n)}) + "\n" for n in range(40)).encode()
    whole = gzip.compress(lines)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])  # a download cut short
    ds = DatasetPaths(str(tmp_path / "wh"), "d")
    build_corpus([str(path)], warehouse=ds.root, dataset=ds.name, config=CFG, progress=False)
    assert "read_error" in set(scan(ds, "rejects").collect()["reason"])
    path.write_bytes(whole)  # downloaded again
    plain = build_corpus([str(path)], warehouse=ds.root, dataset=ds.name, config=CFG, progress=False)
    assert plain.inputs_skipped == 1  # a plain re-run keeps its verdict
    retried = build_corpus([str(path)], warehouse=ds.root, dataset=ds.name, config=CFG, progress=False,
                           retry_failed=True)
    assert retried.inputs_skipped == 0
    assert "read_error" not in set(scan(ds, "rejects").collect()["reason"])
    assert rows_by_source(ds) == {str(path): 40}
    assert scan(ds, "shards").collect()["source"].to_list() == [str(path)]


def test_nul_characters_never_reach_docs_text(tmp_path):
    path = tmp_path / "nul.jsonl"
    path.write_text(json.dumps({"text": prose(3).replace("document number", "document\u0000 num\u0000ber")}) + "\n")
    ds = DatasetPaths(str(tmp_path / "wh"), "d")
    build_corpus([str(path)], warehouse=ds.root, dataset=ds.name, config=CFG, progress=False)
    (text,) = scan(ds).collect()["text"].to_list()
    assert "\x00" not in text and text.startswith("This is document number 3 of the test.")


def test_a_near_dedup_killed_after_its_apply_is_counted_by_the_rerun_as_by_a_clean_build(tmp_path):
    from pipeline.dedup import dedup_dataset
    from warehouse.schema import DATASET_SOURCE

    inputs = [jsonl_of(tmp_path / name, [prose(n) for n in numbers]) for name, numbers in
              (("a.jsonl", range(0, 3)), ("b.jsonl", range(3, 6)))]  # six near-duplicates
    cfg = BuildConfig(workers=1)

    def dedup_row(ds):
        rows = scan(ds, "stages").filter((pl.col("source") == DATASET_SOURCE) & (pl.col("stage") == "dedup"))
        return rows.select("records_in", "dropped").collect().rows()

    clean = DatasetPaths(str(tmp_path / "clean"), "d")
    reference = build_corpus(inputs, warehouse=clean.root, dataset=clean.name, config=cfg, progress=False)
    assert reference.near_dedup.removed == 5

    killed = DatasetPaths(str(tmp_path / "killed"), "d")
    build_corpus(inputs, warehouse=killed.root, dataset=killed.name, progress=False,
                 config=cfg.model_copy(update={"dedup": cfg.dedup.model_copy(update={"near": False})}))
    # The near-dedup pass of a build killed after it changed docs, before its stats row was written.
    dedup_dataset(killed, cfg.dedup, progress=False, run_id="20261204T000000-killed")
    rerun = build_corpus(inputs, warehouse=killed.root, dataset=killed.name, config=cfg, progress=False)
    assert rerun.near_dedup.removed == reference.near_dedup.removed
    assert dedup_row(killed) == dedup_row(clean)
    assert scan(killed).select(pl.len()).collect().item() == scan(clean).select(pl.len()).collect().item()


def test_a_failed_commit_is_logged_with_its_inputs_and_error_then_retried(tmp_path, monkeypatch, caplog):
    import flows.build_steps as steps

    calls = []

    def flaky(ds, keys, tables):
        calls.append(keys)
        if len(calls) == 1:
            raise OSError("disk hiccup")

    monkeypatch.setattr(steps, "commit_inputs", flaky)
    monkeypatch.setattr(steps, "COMMIT_RETRY_DELAYS", (0, 0))
    with caplog.at_level("WARNING", logger="tokenmill"):
        steps.commit_inputs_retrying(DatasetPaths(str(tmp_path), "d"), ["a.warc.gz", "b.jsonl"], {})
    assert len(calls) == 2
    (record,) = [r for r in caplog.records if r.name == "tokenmill"]
    assert record.levelname == "WARNING"
    assert "a.warc.gz, b.jsonl" in record.getMessage() and "OSError: disk hiccup" in record.getMessage()
