"""How many documents of the shared crawl each choice of the two fixed quality rules keeps (run once).

    python -m bench.rule_choices [SHARED_DATA]

Every page of ../shared/data/warc (the Common Crawl, British Library, wget and WET files) and of
../shared/data/extraction/html (20 news and blog articles) is read, extracted and language-checked
once with the default build config; the English pages then go through the quality rules four
ways: datatrove 0.10.1's rules, each of the two fixes alone, and both (the default). The table
goes to bench/results/rule_choices.md.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from bench.common import publish
from pipeline.config import BuildConfig, FineWebConfig, GopherQualityConfig, QualityConfig
from pipeline.extract import Extractor
from pipeline.langid import LanguageIdentifier
from pipeline.quality import QualityFilter
from pipeline.readers import expand_inputs, read_unit
from pipeline.records import Rejection

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "rule_choices.md"

CHOICES = {
    "datatrove 0.10.1 (both rules as datatrove)": QualityConfig.datatrove_identical(),
    "closing quotes only": QualityConfig(gopher_quality=GopherQualityConfig(alpha_words_ratio_over="tokens")),
    "alpha words over words only": QualityConfig(fineweb=FineWebConfig(line_punct_after_closing=False)),
    "both fixes (the default)": QualityConfig(),
}


def english_texts(inputs: list[str]) -> tuple[list[tuple[str, str]], int]:
    """(group, text) of every English page of the inputs after extraction, and how many pages were read."""
    cfg = BuildConfig()
    extractor, langid = Extractor(cfg.extract), LanguageIdentifier(cfg.langid)
    texts, pages = [], 0
    for unit in expand_inputs(inputs):
        group = "extraction benchmark pages" if unit.format == "html" else Path(unit.key).name
        for record in read_unit(unit, cfg.read):
            if isinstance(record, Rejection):
                continue
            pages += 1
            extracted = extractor(record)
            if isinstance(extracted, Rejection):
                continue
            lang, score = langid.predict(extracted.text)
            if langid.reject_reason(lang, score) is None:
                texts.append((group, extracted.text))
    return texts, pages


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    shared = Path(args[0]) if args else REPO.parent / "shared" / "data"
    inputs = [str(p) for p in sorted((shared / "warc").glob("*.warc*.gz")) if ".wat." not in p.name]
    inputs.append(str(shared / "extraction" / "html"))
    texts, pages = english_texts(inputs)
    groups = sorted({g for g, _ in texts})
    rows, reasons = [], {}
    for name, cfg in CHOICES.items():
        rule = QualityFilter(cfg)
        verdicts = [(g, rule(t).reason) for g, t in texts]
        kept = Counter(g for g, reason in verdicts if reason is None)
        reasons[name] = Counter(reason for _, reason in verdicts if reason in (
            "fineweb:line_punct_ratio", "gopher_quality:alpha_words_ratio"))
        rows.append(f"| {name} | {sum(kept.values())} | " + " | ".join(str(kept[g]) for g in groups) + " | "
                    f"{reasons[name]['fineweb:line_punct_ratio']} | {reasons[name]['gopher_quality:alpha_words_ratio']} |")
    counts = Counter(g for g, _ in texts)
    report = "\n".join([
        "# Quality rule choices: documents of the shared crawl each keeps",
        "",
        f"Command: `python -m bench.rule_choices` — {pages} pages read from ../shared/data/warc (WARC, WET; not WAT) "
        f"and ../shared/data/extraction/html; {len(texts)} English documents after extraction and language "
        "identification (default config) go through the Gopher repetition, Gopher quality, C4 and FineWeb rules. "
        "Exact and near dedup are not applied. One run, on a machine shared with other jobs (counts do not depend on it).",
        "",
        "| rules | kept (of " + str(len(texts)) + ") | " + " | ".join(f"{g} ({counts[g]})" for g in groups)
        + " | rejected fineweb:line_punct_ratio | rejected gopher_quality:alpha_words_ratio |",
        "|---|---|" + "---|" * len(groups) + "---|---|",
        *rows,
        "",
        "`datatrove 0.10.1`: `quality.fineweb.line_punct_after_closing = false` and "
        "`quality.gopher_quality.alpha_words_ratio_over = \"tokens\"` (`QualityConfig.datatrove_identical()`).",
        "",
    ])
    publish(report, RESULTS)


if __name__ == "__main__":
    main()
