"""The build config: published defaults, overrides from TOML/YAML, one-line errors."""

import pytest

from pipeline.config import BuildConfig, ConfigError, load_config


def test_defaults_are_the_published_ones():
    cfg = BuildConfig()
    assert cfg.quality.gopher_quality.min_doc_words == 50
    assert cfg.quality.gopher_repetition.top_n_grams == [(2, 0.2), (3, 0.18), (4, 0.16)]
    assert cfg.quality.fineweb.line_punct_thr == 0.12
    assert cfg.quality.c4.filter_no_terminal_punct is False
    assert cfg.extract.favor_precision and not cfg.extract.deduplicate


def test_toml_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "build.toml"
    path.write_text('[langid]\nlanguages = ["de"]\n[quality.gopher_quality]\nmin_doc_words = 100\n')
    cfg = load_config(path)
    assert cfg.langid.languages == ["de"]
    assert cfg.quality.gopher_quality.min_doc_words == 100
    assert cfg.quality.gopher_quality.max_doc_words == 100_000


def test_yaml_is_accepted(tmp_path):
    path = tmp_path / "build.yaml"
    path.write_text("dedup:\n  threshold: 0.7\n")
    assert load_config(path).dedup.threshold == 0.7


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[langid]\nmin_scor = 0.5\n", "langid.min_scor"),        # a typo never silently keeps a default
        ("[langid]\nmin_score = 2\n", "langid.min_score"),        # out of range
        ("[langid\n", "cannot parse"),
        ("[dedup]\nbands = 16\n", "rows"),                      # bands without rows
        ("[dedup]\nbands = 16\nrows = 9\n", "num_perm 128"),    # more rows than permutations
    ],
)
def test_bad_config_gives_one_line_naming_file_and_field(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and fragment in message


def test_missing_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml"):
        load_config(tmp_path / "nope.toml")


def test_a_value_the_types_allow_but_a_quality_rule_refuses_fails_in_load_config(tmp_path):
    path = tmp_path / "build.toml"
    path.write_text("[quality.gopher_repetition]\ntop_n_grams = [[7, 0.2]]\n")
    with pytest.raises(ConfigError, match=r"build.toml: quality.gopher_repetition.top_n_grams: n=7 not supported"):
        load_config(path)


def test_lsh_bands_are_derived_from_the_threshold_unless_given(tmp_path):
    from pipeline.config import DedupConfig

    assert (DedupConfig().bands, DedupConfig().rows) == (None, None)  # derived only when dedup runs
    derived = DedupConfig().banded()
    assert (derived.bands, derived.rows) == (14, 9)
    assert DedupConfig(verify_jaccard=False).banded().bands == 9
    assert DedupConfig(threshold=0.9).banded().bands != 14
    path = tmp_path / "build.toml"
    path.write_text("[dedup]\nbands = 16\nrows = 8\n")
    given = load_config(path).dedup
    assert given.banded() == given and (given.bands, given.rows) == (16, 8)
    # what a build records (its config as JSON) reads back with the same bands
    assert BuildConfig.model_validate_json(BuildConfig(dedup=derived).model_dump_json()).dedup == derived
