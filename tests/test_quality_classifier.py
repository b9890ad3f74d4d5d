"""The quality classifier on real text: trained on reference prose from ../shared/data against
pages of real crawls, it separates held-out chunks, trains deterministically for a seed, and a build
configured with it scores every document, rejects those below min_score, keeps the best copy of
each near-duplicate cluster, and says when a dataset has no classifier."""

from __future__ import annotations

import filecmp
import json
import re
from pathlib import Path

import polars as pl
import pytest

from flows.build_corpus import build_corpus
from pipeline.config import BuildConfig, ClassifierConfig, ConfigError, QualityConfig, load_config
from pipeline.quality import QualityFilter
from pipeline.quality.classifier import REASON, QualityClassifier
from pipeline.quality.classifier_train import ClassifierTraining, dataset_texts, metrics_path, train_classifier
from warehouse import stats
from warehouse.errors import UsageError
from warehouse.layout import DatasetPaths
from warehouse.read import scan
from warehouse.schema import EXCERPT_CHARS

pytestmark = pytest.mark.shared

REPO = Path(__file__).resolve().parent.parent
CRAWLS = ("warc/wget-2024_dolma-sample-0000_22resp.warc.gz", "warc/cc-main-2020-34_16pages.warc.gz",
          "warc/bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz")


@pytest.fixture(scope="module")
def crawl(shared_data, tmp_path_factory, build_plain) -> DatasetPaths:
    """Three real crawls (wget 2024, Common Crawl 2020, British Library 2014) as a built dataset."""
    ds = DatasetPaths(str(tmp_path_factory.mktemp("warehouse")), "crawl")
    build_plain([str(shared_data / c) for c in CRAWLS], ds, BuildConfig())
    return ds


@pytest.fixture(scope="module")
def reference(shared_data) -> list[str]:
    return [str(shared_data / "prose" / "gutenberg" / "pg9198_complete-angler.txt"), str(shared_data / "prose" / "tinyshakespeare.txt")]


@pytest.fixture(scope="module")
def classifier(crawl, reference, tmp_path_factory):
    out = tmp_path_factory.mktemp("classifier") / "quality.bin"
    return out, train_classifier(reference, f"{crawl.root}/{crawl.name}", out)


def test_classifier_tells_reference_prose_from_crawl_pages_on_held_out_chunks(classifier):
    path, report = classifier
    assert report.test_positive == report.test_negative >= 20
    assert report.auc >= 0.95
    assert report.precision >= 0.8 and report.recall >= 0.8
    saved = json.loads(metrics_path(path).read_text())
    assert (saved["auc"], saved["precision"], saved["recall"]) == (report.auc, report.precision, report.recall)


def test_training_is_deterministic_for_a_seed(classifier, crawl, reference, tmp_path):
    path, report = classifier
    negative = f"{crawl.root}/{crawl.name}"
    again = train_classifier(reference, negative, tmp_path / "again.bin")
    # Same seed, same sample, same split. fastText 0.9.3 usually writes a byte-identical model, but
    # not always (one of three full CI-style runs of this suite gave a different file, and a later
    # run an AUC of 0.957 against 1.0: one of the 23 held-out chunks ranked differently, which moves
    # the AUC by 1/23): hold the split exactly and the held-out quality to within two chunks' worth,
    # so the test says what is guaranteed.
    assert (again.test_positive, again.test_negative, again.settings["seed"]) == (
        report.test_positive, report.test_negative, report.settings["seed"])
    assert abs(again.auc - report.auc) <= 2 / report.test_positive
    train_classifier(reference, negative, tmp_path / "seed1.bin", ClassifierTraining(seed=1))
    assert not filecmp.cmp(path, tmp_path / "seed1.bin", shallow=False)


def test_score_is_the_probability_of_the_reference_label(classifier, crawl, shared_data):
    path, _ = classifier
    scorer = QualityClassifier(ClassifierConfig(model_path=path))
    crawl_scores = [scorer.score(t) for t in dataset_texts(crawl)]
    prose = (shared_data / "prose" / "gutenberg" / "pg14263_katrine.txt").read_text(encoding="utf-8")
    prose_scores = [scorer.score(p) for p in re.split(r"\n\s*\n", prose)[200:300] if len(p) > 300]
    assert len(prose_scores) > 10
    assert all(0.0 <= s <= 1.0 for s in crawl_scores + prose_scores)
    # An unseen book (Scott's, not the Walton and Shakespeare it was trained on) scores above the crawl.
    mean_prose, mean_crawl = sum(prose_scores) / len(prose_scores), sum(crawl_scores) / len(crawl_scores)
    assert mean_prose > 0.5 > mean_crawl, (mean_prose, mean_crawl)
    with pytest.raises(UsageError, match="no label 'good'"):
        QualityClassifier(ClassifierConfig(model_path=path, positive_label="good")).score("text")


def test_the_quality_train_command_prints_and_saves_the_metrics(crawl, reference, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    out = tmp_path / "q.bin"
    args = ["quality", "train", "--positive", reference[0], "--positive", reference[1],
            "--negative", f"{crawl.root}/{crawl.name}", "--out", str(out), "--seed", "3", "--epoch", "5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads(metrics_path(out).read_text())
    assert f"AUC {saved['auc']:.4f}" in result.output and saved["settings"]["seed"] == 3
    no_dataset = CliRunner().invoke(app, [*args[:6], "--negative", str(tmp_path / "none"), "--out", str(out)])
    assert no_dataset.exit_code == 2 and "no built dataset" in no_dataset.output


def test_min_score_without_a_model_is_a_config_error(tmp_path):
    config = tmp_path / "build.toml"
    config.write_text("[quality.classifier]\nmin_score = 0.5\n")
    with pytest.raises(ConfigError, match="model_path"):
        load_config(config)


def test_a_dataset_built_without_a_classifier_says_so(crawl):
    assert stats.classifier_models(crawl) == []
    assert stats.quality_scores(crawl) is None


def near_duplicate_pairs(shared_data: Path) -> list[dict]:
    """JSONL rows: passages of a real book that pass the quality rules, each twice, the copy with a
    few words changed."""
    text = (shared_data / "prose" / "gutenberg" / "pg9198_complete-angler.txt").read_text(encoding="utf-8")
    unwrapped = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
    passages = ["\n".join(unwrapped[i : i + 4]) for i in range(100, len(unwrapped) - 4, 4)]
    rules = QualityFilter(QualityConfig())
    paragraphs = [p for p in passages if len(p.split()) > 150 and rules(p).reason is None][:8]
    assert len(paragraphs) == 8
    rows = []
    for i, paragraph in enumerate(paragraphs):
        words = paragraph.split()
        copy = words[:5] + ["indeed"] + words[5:-5] + ["and", "so", "forth."]
        rows.append({"id": f"pair{i}-a", "text": paragraph})
        rows.append({"id": f"pair{i}-b", "text": " ".join(copy)})
    return rows


@pytest.fixture(scope="module")
def scored_build(classifier, shared_data, tmp_path_factory):
    """The bundled gov.uk crawl, the two bundled books and near-duplicate passages, built with the
    classifier, a minimum score and the rejected documents' text kept."""
    path, _ = classifier
    tmp = tmp_path_factory.mktemp("scored")
    pairs = tmp / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in near_duplicate_pairs(shared_data)))
    config = tmp / "build.toml"
    config.write_text(f'[quality]\nkeep_rejected_text = true\n[quality.classifier]\nmodel_path = "{path}"\nmin_score = 0.3\n')
    inputs = [str(REPO / "sample" / "warc" / "bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz"),
              str(REPO / "sample" / "html"), str(pairs)]
    summary = build_corpus(inputs, warehouse=str(tmp), dataset="scored", config=load_config(config), progress=False)
    return DatasetPaths(str(tmp), "scored"), summary


def test_every_kept_document_has_a_score_and_none_is_below_min_score(scored_build):
    ds, _ = scored_build
    docs = scan(ds).collect()
    assert docs.height > 5
    assert docs["quality_score"].null_count() == 0
    assert docs["quality_score"].min() >= 0.3 and docs["quality_score"].max() <= 1.0


def test_documents_below_min_score_are_rejected_with_their_score(scored_build):
    ds, _ = scored_build
    rejected = scan(ds, "rejects").filter(pl.col("reason") == REASON).collect()
    assert rejected.height > 5  # gov.uk pages are crawl, not prose
    assert set(rejected["stage"]) == {"classifier"}
    scores = [float(d.split(" < ")[0]) for d in rejected["detail"]]
    assert all(s < 0.3 for s in scores)
    (row,) = scan(ds, "stages").filter(pl.col("stage") == "classifier").group_by("stage").agg(
        pl.col("records_in").sum(), pl.col("dropped").sum()).collect().iter_rows(named=True)
    assert row["dropped"] == rejected.height


def test_rejected_documents_keep_their_full_text_and_score_when_asked(scored_build):
    ds, _ = scored_build
    filtered = scan(ds, "filtered").collect()
    rejects = scan(ds, "rejects").filter(pl.col("stage").is_in(["quality", "classifier"])).collect()
    assert sorted(filtered["id"]) == sorted(rejects["id"])
    assert (filtered["text"].str.len_chars() > EXCERPT_CHARS).any()
    assert filtered["quality_score"].null_count() == 0
    assert set(filtered["reason"]) == set(rejects["reason"])


def test_near_dedup_keeps_the_highest_scoring_copy(scored_build):
    ds, summary = scored_build
    assert summary.near_dedup.removed >= 6
    signatures = pl.read_parquet(f"{ds.dedup}/signatures/*.parquet").select("id", "quality_score")
    score = dict(signatures.iter_rows())
    removed = scan(ds, "rejects").filter(pl.col("reason") == "near_duplicate").select("id", "detail").collect()
    for removed_id, kept_id in removed.iter_rows():
        assert (score[kept_id], removed_id) > (score[removed_id], kept_id)  # higher score; a tie: smaller id
    # Not the smallest id by accident: in some cluster the kept copy has the larger id.
    assert any(kept_id > removed_id for removed_id, kept_id in removed.iter_rows())


def test_stats_show_the_score_distribution(scored_build, classifier):
    ds, _ = scored_build
    frame = stats.quality_scores(ds)
    assert frame["docs"].sum() == scan(ds).select(pl.len()).collect().item()
    assert frame.filter(pl.col("quality_score").str.starts_with("0.0 "))["docs"].item() == 0  # all >= 0.3
    assert stats.classifier_models(ds) == [str(classifier[0])]
