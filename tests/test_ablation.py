"""A small ablation end to end on a real build (the bundled gov.uk crawl and two books): variants
`all` (filters off), `docs` and a Polars expression; equal budgets; one tokenizer; and the same
seeds reproduce every number exactly."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from ablation.ablate import AblationSettings, run_ablation
from ablation.variants import Variant, VariantError, select
from pipeline.config import BuildConfig, QualityConfig
from warehouse.layout import DatasetPaths
from warehouse.read import docs_version, scan

REPO = Path(__file__).resolve().parent.parent
VARIANTS = ["all=all", "docs=docs", "long=docs where q_gopher_n_words > 400"]
# A proxy small enough for the test suite: 16 steps of 8 x 64 tokens on a 2-layer, 64-wide model.
TINY = AblationSettings(tokens=8192, seeds=2, preset="tiny", batch_size=8, vocab_size=512,
                        eval_points=4, curve_tokens=1024, score_tokens=4096)


@pytest.fixture(scope="module")
def built(tmp_path_factory, build_plain) -> DatasetPaths:
    ds = DatasetPaths(str(tmp_path_factory.mktemp("warehouse")), "sample")
    inputs = [str(REPO / "sample" / "warc" / "bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz"),
              str(REPO / "sample" / "html")]
    build_plain(inputs, ds, BuildConfig(quality=QualityConfig(keep_rejected_text=True)))
    return ds


@pytest.fixture(scope="module")
def eval_text(shared_data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("eval") / "wikitext2_valid_head.txt"
    text = (shared_data / "prose" / "wikitext2_valid.txt").read_text(encoding="utf-8")
    path.write_text(text[:60_000], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ablated(built, eval_text, tmp_path_factory):
    out = tmp_path_factory.mktemp("ablation")
    return out, run_ablation(f"{built.root}/{built.name}", VARIANTS, eval_text, out, TINY)


def test_all_is_the_kept_documents_plus_the_quality_rejected_ones(built):
    version = docs_version(built)
    everything, kept = (select(built, Variant("v", f), version) for f in ("all", "docs"))
    rejected = scan(built, "rejects").filter(pl.col("stage") == "quality").collect()
    assert set(kept["id"]) < set(everything["id"])
    assert set(everything["id"]) - set(kept["id"]) <= set(rejected["id"])
    assert len(set(everything["id"]) - set(kept["id"])) >= 5


@pytest.mark.shared
def test_every_run_has_the_same_budget_and_every_number_is_reported(ablated):
    out, report = ablated
    results = pl.read_parquet(out / "results.parquet")
    assert report.tokens == 8192 and results["tokens"].unique().to_list() == [8192]
    assert results["params"].n_unique() == 1
    assert set(results["scored_on"]) == {"eval", "val:all", "val:docs", "val:long"}
    assert results.group_by("variant").len().sort("variant")["len"].to_list() == [2 * 4] * 3
    assert report.table["variant"].to_list() == ["all", "docs", "long"]
    assert (out / "validation_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    curves = pl.read_parquet(out / "curves.parquet")
    assert curves.group_by("variant", "seed").len()["len"].min() >= 4
    assert len(report.verdict) == 2 and all("seed" in line for line in report.verdict)
    assert "--tokens 8192" in (out / "report.md").read_text()


@pytest.mark.shared
def test_the_same_seeds_reproduce_every_number_exactly(ablated, built, eval_text, tmp_path):
    out, first = ablated
    again = run_ablation(f"{built.root}/{built.name}", VARIANTS, eval_text, tmp_path, TINY)
    assert again.results.equals(first.results)
    assert pl.read_parquet(tmp_path / "curves.parquet").equals(pl.read_parquet(out / "curves.parquet"))
    assert (tmp_path / "tokenizer.model").read_bytes() == (out / "tokenizer.model").read_bytes()


def test_a_variant_that_cannot_be_used_is_one_clear_error(built):
    version = docs_version(built)
    with pytest.raises(VariantError, match="NAME=FILTER"):
        Variant.parse("no filter")
    with pytest.raises(VariantError, match="nope"):
        select(built, Variant("v", "nope > 1"), version)


@pytest.mark.shared
def test_the_ablate_command_prints_the_table_and_the_verdict(built, eval_text, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    args = ["ablate", f"{built.root}/{built.name}", "--variant", "off=all", "--variant", "on=docs", "--eval", str(eval_text),
            "--tokens", "4096", "--seeds", "1", "--preset", "tiny", "--vocab-size", "512", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "bits per byte" in result.output and "from one seed each" in result.output
    assert "--tokens 4096" in result.output
    assert (tmp_path / "results.parquet").is_file()
    missing = CliRunner().invoke(app, [*args[:-2], "--out", str(tmp_path / "x"), "--variant", "bad=nope > 1"])
    assert missing.exit_code == 2 and "nope" in missing.output


@pytest.mark.shared
def test_the_prefect_flow_computes_the_same_numbers(ablated, built, eval_text, tmp_path):
    from flows.ablate import ablate

    out, first = ablated
    one_seed = TINY.model_copy(update={"seeds": 1})
    report = ablate(f"{built.root}/{built.name}", VARIANTS, str(eval_text), str(tmp_path), one_seed)
    assert report.results.equals(first.results.filter(pl.col("seed") == 0))


def test_a_difference_counts_only_beyond_the_seed_spread():
    from ablation.report import compare, verdict

    def results(a: list[float], b: list[float]) -> pl.DataFrame:
        return pl.DataFrame([{"variant": v, "scored_on": "eval", "bpb": x} for v, xs in (("a", a), ("b", b)) for x in xs])

    (apart,) = compare(results([1.0, 1.1], [1.2, 1.3]))
    assert (apart.better, apart.worse, apart.separated) == ("a", "b", True)
    assert apart.difference == pytest.approx(0.2)
    (overlapping,) = compare(results([1.0, 1.25], [1.2, 1.3]))
    assert overlapping.separated is False
    assert "within the seed spread" in verdict([overlapping], "eval.txt")[0]
    (single,) = compare(results([1.0], [1.2]))
    assert single.separated is None and "spread is unknown" in verdict([single], "eval.txt")[0]
