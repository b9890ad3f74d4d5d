"""Decontamination: documents sharing a 13-word n-gram (normalised as the dedup shingles) with an
evaluation file become `decontamination` rejects naming that file; 12 shared words are not enough;
a run killed between its two writes converges when run again."""

from __future__ import annotations

import json

import polars as pl
import pytest

from pipeline.decontaminate import NgramIndex, decontaminate_dataset, evaluation_texts, find_contaminated
from pipeline.dedup.shingles import words_of
from tests.lock_holder import lock_held_elsewhere
from tests.small_dataset import build_from_texts, gutenberg_paragraphs, wikitext_paragraphs
from warehouse import stats
from warehouse.read import scan
from warehouse.schema import rejects_from_docs

KATRINE = "pg14263_katrine.txt"


@pytest.fixture
def corpus(shared_data, tmp_path):
    """12 paragraphs of Katrine and 20 of WikiText as documents; the evaluation files beside them."""
    katrine = gutenberg_paragraphs(shared_data, KATRINE, 12)
    wiki = wikitext_paragraphs(shared_data, 20)
    docs = [(f"https://gutenberg.org/14263#{i}", p) for i, p in enumerate(katrine)]
    docs += [(f"https://en.wikipedia.org/wiki/P{i}", p) for i, p in enumerate(wiki)]
    ds, _ = build_from_texts(tmp_path, "c", docs)
    kept = scan(ds).collect()
    assert kept.filter(pl.col("url").str.contains("gutenberg")).height == 12

    wiki_kept = kept.filter(pl.col("url").str.contains("wikipedia")).sort("url")["text"].to_list()
    # A benchmark in JSONL: two items quote 13 words of a document (case and punctuation changed),
    # one quotes only 12 words of another.
    quote = lambda text, start, n: " ".join(words_of(text)[start : start + n])  # noqa: E731
    items = [
        {"question": quote(wiki_kept[0], 10, 13).upper() + "?", "choices": ["yes", "no"]},
        {"question": "Which is true?", "choices": ["none", quote(wiki_kept[1], 30, 20).replace(" ", ", ", 3)]},
        {"question": quote(wiki_kept[2], 5, 12), "answer": 2},
    ]
    qa = tmp_path / "wiki_qa.jsonl"
    qa.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return ds, qa, shared_data / "prose" / "gutenberg" / KATRINE, wiki_kept


@pytest.mark.shared
def test_documents_sharing_13_words_with_an_evaluation_file_become_rejects_naming_it(corpus):
    ds, qa, book, wiki_kept = corpus
    before = scan(ds).select(pl.len()).collect().item()
    index = NgramIndex.build([str(qa), str(book)], n=13)
    report = decontaminate_dataset(ds, index)

    assert report.documents == before
    assert report.per_file == {str(book): 12, str(qa): 2}
    assert report.removed == 14 == before - scan(ds).select(pl.len()).collect().item()
    rejects = scan(ds, "rejects").filter(pl.col("reason") == "decontamination").collect()
    assert set(rejects["stage"]) == {"decontaminate"}
    assert rejects.filter(pl.col("detail").str.starts_with(str(book))).height == 12
    assert rejects.filter(pl.col("url").str.contains("gutenberg")).height == 12
    qa_rejects = rejects.filter(pl.col("detail").str.starts_with(str(qa)))
    assert set(qa_rejects["excerpt"]) == {wiki_kept[0][:500], wiki_kept[1][:500]}
    assert qa_rejects.filter(pl.col("excerpt") == wiki_kept[0][:500])["detail"].item() == f"{qa}: 1 shared 13-grams"
    # the 12-word quote of the third paragraph does not contaminate it
    assert scan(ds).filter(pl.col("text") == wiki_kept[2]).collect().height == 1

    funnel = stats.funnel(ds)
    assert funnel.filter((pl.col("stage") == "decontaminate") & (pl.col("reason") == "decontamination"))["records"].item() == 14
    stage = stats.stages(ds).filter(pl.col("stage") == "decontaminate")
    assert stage["records_in"].item() == before and stage["dropped"].item() == 14


@pytest.mark.shared
def test_a_run_killed_between_rejects_and_docs_converges_when_run_again(corpus):
    ds, qa, book, _ = corpus
    index = NgramIndex.build([str(book), str(qa)])
    removed, _, _ = find_contaminated(ds, index)
    assert removed.num_rows == 14
    # The killed run wrote its rejects rows, not yet the new docs version.
    rows = scan(ds).filter(pl.col("id").is_in(removed["id"].to_pylist())).collect().to_arrow()
    from deltalake import write_deltalake

    write_deltalake(ds.rejects, rejects_from_docs(rows, "decontaminate", "decontamination", ["killed"] * rows.num_rows),
                    mode="append")
    report = decontaminate_dataset(ds, index)
    assert report.removed == 14
    rejects = scan(ds, "rejects").filter(pl.col("stage") == "decontaminate").collect()
    assert rejects.height == 14 and rejects["id"].n_unique() == 14
    assert scan(ds).filter(pl.col("id").is_in(removed["id"].to_pylist())).collect().height == 0
    again = decontaminate_dataset(ds, index)
    assert again.removed == 0


def test_evaluation_texts_from_jsonl_parquet_and_text(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jsonl").write_text('{"q": "one", "c": ["two", {"d": "three"}], "n": 4}\n\n')
    pq.write_table(pa.table({"question": ["four", None], "label": [1, 2]}), tmp_path / "b.parquet")
    (tmp_path / "c.txt").write_text("first line\nsame paragraph\n\n\nsecond\n")
    assert list(evaluation_texts(str(tmp_path / "a.jsonl"))) == ["one", "two", "three"]
    assert list(evaluation_texts(str(tmp_path / "b.parquet"))) == ["four"]
    assert list(evaluation_texts(str(tmp_path / "c.txt"))) == ["first line\nsame paragraph\n", "second\n"]
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match="bad.jsonl: line 1"):
        list(evaluation_texts(str(tmp_path / "bad.jsonl")))


def test_an_evaluation_text_shorter_than_n_words_gives_no_ngram(tmp_path):
    (tmp_path / "short.txt").write_text("the cat sat on the mat\n\n" + " ".join(f"w{i}" for i in range(14)) + "\n")
    index = NgramIndex.build([str(tmp_path / "short.txt")], n=13)
    assert len(index.hashes) == 2  # 14 words: two 13-grams; the 6-word paragraph none
    file_number, shared = index.match(["the cat sat on the mat", "x " + " ".join(f"W{i}" for i in range(13)) + " y"])
    assert file_number.tolist() == [-1, 0] and shared.tolist() == [0, 1]


@pytest.mark.shared
def test_the_decontaminate_command_reports_what_it_removed(corpus):
    from typer.testing import CliRunner

    from flows.cli import app

    ds, qa, book, _ = corpus
    before = scan(ds).select(pl.len()).collect().item()
    result = CliRunner().invoke(app, ["decontaminate", ds.base, "--against", str(qa), "--against", str(book)])
    assert result.exit_code == 0, result.output
    assert f"decontamination: 14 of {before} documents removed" in " ".join(result.output.split())
    missing = CliRunner().invoke(app, ["decontaminate", ds.base, "--against", str(qa.with_name("nope.jsonl"))])
    assert missing.exit_code == 2 and "nope.jsonl" in missing.output


@pytest.mark.shared
def test_decontaminate_waits_for_the_writer_lock_like_dedup(corpus):
    from typer.testing import CliRunner

    from flows.cli import app

    ds, qa, _, _ = corpus
    before = scan(ds).select(pl.len()).collect().item()
    with lock_held_elsewhere(ds, "a build"):
        busy = CliRunner().invoke(app, ["decontaminate", ds.base, "--against", str(qa), "--wait", "1"])
        assert busy.exit_code == 2 and "being written by a build" in busy.output, busy.output
        assert scan(ds).select(pl.len()).collect().item() == before  # nothing removed


def test_an_ngram_in_two_evaluation_files_is_attributed_to_the_first(tmp_path):
    shared = " ".join(f"shared{i}" for i in range(13))
    (tmp_path / "a.txt").write_text(shared + "\n\n" + " ".join(f"a{i}" for i in range(13)) + "\n")
    (tmp_path / "b.txt").write_text(" ".join(f"b{i}" for i in range(13)) + "\n\n" + shared + "\n")
    index = NgramIndex.build([str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
    assert index.ngrams_per_file == [2, 2] and len(index.hashes) == 3
    assert list(index.hashes) == sorted(index.hashes)
    file_number, _ = index.match([shared, " ".join(f"b{i}" for i in range(13)), "nothing here"])
    assert file_number.tolist() == [0, 1, -1]


def test_a_build_naming_a_missing_evaluation_file_stops_before_reading_inputs(tmp_path):
    from flows.build_corpus import build_corpus
    from pipeline.config import BuildConfig, DecontaminateConfig
    from warehouse.errors import MissingFileError

    cfg = BuildConfig(decontaminate=DecontaminateConfig(against=[str(tmp_path / "missing.jsonl")]))
    with pytest.raises(MissingFileError, match="missing.jsonl"):
        build_corpus([str(tmp_path)], warehouse=str(tmp_path / "wh"), dataset="d", config=cfg, progress=False)
    assert not (tmp_path / "wh" / "d" / "docs").exists()


@pytest.mark.shared
def test_a_build_with_a_decontaminate_section_runs_it_as_its_last_step(shared_data, tmp_path):
    from pathlib import Path

    from flows.build_corpus import build_corpus
    from pipeline.config import BuildConfig, DecontaminateConfig
    from warehouse.layout import DatasetPaths

    sample_html = Path(__file__).resolve().parent.parent / "sample" / "html"
    cfg = BuildConfig(workers=1, decontaminate=DecontaminateConfig(against=[str(shared_data / "prose" / "gutenberg" / KATRINE)]))
    summary = build_corpus([str(sample_html)], warehouse=str(tmp_path), dataset="books", config=cfg, progress=False)
    ds = DatasetPaths(str(tmp_path), "books")
    assert summary.decontamination is not None and summary.decontamination.removed == 1
    (row,) = scan(ds, "rejects").filter(pl.col("reason") == "decontamination").collect().iter_rows(named=True)
    assert row["source"].endswith("pg14263_katrine.htm") and row["detail"].startswith(str(shared_data))
    stage = scan(ds, "stages").filter(pl.col("stage") == "decontaminate").collect()
    assert stage["build_id"].to_list() == [summary.build_id] and stage["dropped"].to_list() == [1]
