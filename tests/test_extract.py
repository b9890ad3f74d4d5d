"""Extractor: main text, title and date of HTML records; text records passed through; every
failure a Rejection of stage "extract" with its reason."""

from __future__ import annotations

import contextlib
import copy
import gzip
import hashlib
import json
import signal
import threading
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

import pytest
import trafilatura.xpaths
from lxml.etree import XPath
from lxml.html import fromstring, tostring
from trafilatura import bare_extraction, load_html
from trafilatura.htmlprocessing import convert_tags, tree_cleaning
from trafilatura.settings import Extractor as TrafilaturaOptions

from pipeline.charset import decode_html
from pipeline.config import ExtractConfig
from pipeline.extract import Extracted, Extractor
from pipeline.fast_trafilatura import (
    _LocalPredicate,
    faster_equivalent,
    faster_passes,
    faster_xpaths,
    fastest_equivalent,
    parse_html,
)
from pipeline.records import EXCERPT_CHARS, RawRecord, Rejection

REPO = Path(__file__).resolve().parent.parent
VOX_PAGE = "16c30add7e96315e9cc957d85aa876ccb6b70055f0ddab51547a586117cc1f56"  # vox.com, 2019-11-08
WSJ_PAGE = "042bb7b5fedab6eac7db576522b89b93904c237d344bcbe14a6a5ab7f7335856"  # 600 KB of HTML


def _bench_module():
    """bench/extract_f1.py: the benchmark's metric, shared with the test (pytest puts the repo on sys.path)."""
    import bench.extract_f1

    return bench.extract_f1


def _page(shared_data: Path, page_id: str, **fields) -> RawRecord:
    folder = shared_data / "extraction"
    url = json.loads((folder / "ground-truth.json").read_text())[page_id]["url"]
    body = gzip.decompress((folder / "html" / f"{page_id}.html.gz").read_bytes())
    return RawRecord(source=f"{page_id}.html.gz", source_offset=0, kind="html", body=body, url=url,
                     **fields)


def _html(body: str | bytes, **fields) -> RawRecord:
    return RawRecord(source="test.warc.gz", source_offset=42, kind="html", body=body, **fields)


def _trafilatura_xpath_lists() -> dict[str, list[XPath]]:
    return {name: value for name, value in vars(trafilatura.xpaths).items()
            if isinstance(value, list) and value and isinstance(value[0], XPath)}


def bundled_records() -> list[RawRecord]:
    """HTML pages bundled in sample/: its two Gutenberg books and a spread of its WARCs' HTML
    responses (every fifth: the full set takes a minute on one core)."""
    bench = _bench_module()
    books = [bench.html_record(path.name, path.read_bytes(), None) for path in sorted((REPO / "sample" / "html").glob("*.htm"))]
    return books + bench.warc_html_records(REPO / "sample" / "warc")[::5]


# The guards of the trafilatura rewrite (pipeline/fast_trafilatura.py) run on the bundled pages
# always, and on shared/data's 20 benchmark pages and 82 crawled responses where it is present.
@pytest.fixture(scope="module", params=["bundled", pytest.param("shared", marks=pytest.mark.shared)])
def crawled_pages(request) -> list[str]:
    """Real pages, decoded: sample/'s, or the 20 benchmark pages and 82 HTML responses of shared/data."""
    if request.param == "bundled":
        records = bundled_records()
        assert len(records) >= 10  # the guards below must never pass on an empty list
    else:
        shared_data = request.getfixturevalue("shared_data")
        bench = _bench_module()
        pages = bench.load_benchmark(shared_data / "extraction" / "html",
                                     shared_data / "extraction" / "ground-truth.json")
        records = [bench.html_record(page_id, body, url) for page_id, url, body, _ in pages]
        records += bench.warc_html_records(shared_data / "warc")
    return [decode_html(record.body, record.http_charset)[0] for record in records]


@pytest.mark.shared
def test_default_config_reaches_benchmark_f1_of_095(shared_data):
    metrics = _bench_module().extraction_f1(
        shared_data / "extraction" / "html", shared_data / "extraction" / "ground-truth.json")
    # Measured 0.988 (precision 0.982, recall 0.995); trafilatura 2.0 published 0.958 on all 181.
    assert metrics["pages"] == 20 and metrics["rejected"] == 0
    assert metrics["f1"] >= 0.95


def test_benchmark_metric_matches_evaluate_py_on_a_worked_example():
    bench = _bench_module()
    # 5 true tokens -> 2 shingles; the prediction shares one and adds one: tp=fp=fn=1/3.
    assert bench.page_scores("a b c d e", "a b c d x") == pytest.approx((1 / 3, 1 / 3, 1 / 3))
    metrics = bench.benchmark_metrics([(1 / 3, 1 / 3, 1 / 3), (1.0, 0.0, 0.0), (0.0, 0.0, 0.0)])
    # The empty page counts in neither mean: precision = recall = (0.5 + 1) / 2.
    assert metrics == pytest.approx({"f1": 0.75, "precision": 0.75, "recall": 0.75})


def test_fast_pass_and_faster_xpaths_give_trafilaturas_own_text_on_the_bundled_pages():
    """The whole rewrite (our parser, faster XPaths, fast pass first) against trafilatura as shipped."""
    extractor = Extractor(ExtractConfig())
    for record in bundled_records():
        full = bare_extraction(decode_html(record.body, record.http_charset)[0], favor_precision=True,
                               include_comments=False, deduplicate=False)
        ours = extractor(record)
        if full is None or not full.text:
            assert isinstance(ours, Rejection), record.url
        else:
            assert ours.text == unicodedata.normalize("NFC", full.text.strip()), record.url


@pytest.mark.shared
def test_fast_pass_gives_the_full_cascade_text_on_the_benchmark_pages(shared_data):
    extractor = Extractor(ExtractConfig())
    for path in sorted((shared_data / "extraction" / "html").glob("*.html.gz")):
        record = _page(shared_data, path.name.removesuffix(".html.gz"))
        full = bare_extraction(decode_html(record.body, None)[0], favor_precision=True,
                               include_comments=False, deduplicate=False)
        assert extractor(record).text == unicodedata.normalize("NFC", full.text.strip()), path.name


def test_faster_xpaths_select_what_trafilaturas_own_select(crawled_pages):
    # trafilatura runs them on the page as parsed and on its cleaned, converted tree (<list>...)
    options = TrafilaturaOptions(precision=True)
    for html in crawled_pages:
        tree = load_html(html)
        converted = convert_tags(tree_cleaning(copy.deepcopy(tree), options), options)
        for name, expressions in _trafilatura_xpath_lists().items():
            for own in expressions:
                faster, fastest = faster_equivalent(own), fastest_equivalent(own)
                for root in (tree, converted):
                    selected = own(root)
                    assert faster(root) == selected, (name, own.path)
                    assert fastest(root) == selected, (name, own.path)


def test_discard_xpaths_become_walks_and_nonlocal_ones_stay_xpaths():
    """The guard above must compare the walks, not only XPaths: the discard lists trafilatura
    evaluates most take the `_LocalPredicate` path; an expression reading beyond the element does not."""
    for expression in (*trafilatura.xpaths.OVERALL_DISCARD_XPATH, trafilatura.xpaths.BODY_XPATH[0],
                       trafilatura.xpaths.BODY_XPATH[2], trafilatura.xpaths.PRECISION_DISCARD_XPATH[1]):
        assert isinstance(fastest_equivalent(expression), _LocalPredicate), expression.path
    for path in (".//*[.//b][@class or @id]", ".//*[@class or @id][2]", ".//*[@id or string-length(@class)]",
                 "(.//article)[1]", ".//*[@class or @id or text()]"):
        assert not isinstance(fastest_equivalent(XPath(path)), _LocalPredicate), path


def test_sections_pruned_in_one_walk_are_pruned_as_trafilatura_prunes_them(crawled_pages):
    """prune_unwanted_sections with its discard lists answered by one walk (faster_passes inside
    faster_xpaths) leaves the very tree trafilatura's own leaves, in every focus, with and without
    teasers and images, on the page's cleaned frame as trafilatura prunes it."""
    import trafilatura.main_extractor as main_extractor

    def pruned(tree, options, potential_tags, keep_teasers, fast):
        tree = copy.deepcopy(tree)
        if fast:
            with faster_xpaths(), faster_passes():
                main_extractor.prune_unwanted_sections(tree, potential_tags, options, keep_teasers)
        else:
            main_extractor.prune_unwanted_sections(tree, potential_tags, options, keep_teasers)
        return tostring(tree)

    changed = 0
    for html in crawled_pages:
        for focus in ("precision", "balanced", "recall"):
            options = TrafilaturaOptions(precision=focus == "precision", recall=focus == "recall")
            frame = convert_tags(tree_cleaning(load_html(html), options), options).find(".//body")
            if frame is None:
                continue
            for potential_tags, keep_teasers in (({"p", "head"}, False), ({"p", "graphic"}, True)):
                own = pruned(frame, options, potential_tags, keep_teasers, fast=False)
                assert pruned(frame, options, potential_tags, keep_teasers, fast=True) == own
                changed += own != tostring(frame)
    assert changed >= 10  # the pruning removed something on many of the pages compared


@pytest.mark.parametrize("expression", [
    ".//*[re:test(@class, 'menu|nav')]",
    ".//*[re:test(@id|@class, '^Nav', 'i')]",
    ".//*[re:test(@class, '^$|menu')]",           # true on an element without a class
    ".//*[self::div or self::p][@class]",
    ".//*[self::div or self::p][1]",              # first of its parent's divs and ps
    ".//*[self::div or self::p][last()]",
    "(.//*[self::div or self::p][not(.//b)])[2]",
    ".//*[self::p or self::span][string-length(.)]",  # a number: true where it is the position
    # id and class both set, in either order: re:test reads the first node lxml hands it
    ".//*[re:test(@id|@class, '^x')]",
    ".//*[re:test(@class|@id, 'y$')]",
    ".//*[re:test(@class, 'MENU', 'i')]",
    # the walk's shapes: first of all, first among its siblings, a union in the element's attribute order
    "(.//*[self::div or self::p][@class or @id])[1]",
    ".//*[self::div or self::p][@class or @id][1]",
    ".//*[self::p or self::span][@id or @class][1]",
    ".//*[starts-with(@id|@class, 'x') or @class='menu']",
    ".//*[re:test(@class|@id, 'y$') or not(@id)]",
    ".//*[re:test(@id|@class, '^y') or @title]",  # eight and nine: same values, not the same first
])
def test_faster_xpath_selects_the_same_elements_in_the_same_order(expression):
    page = fromstring("<html><body><div class='menu'><p>one <b>1</b></p><p id='nav'>two</p></div>"
                      "<div><p class=''>three</p><span>four</span><p>five</p></div>"
                      "<div id='xa' class='by'>six</div><div class='xb' id='ay'>seven</div>"
                      "<div id='xc' class='yc'>eight</div><div class='yc' id='xc'>nine</div></body></html>")
    own = XPath(expression, namespaces={"re": trafilatura.xpaths.REGEXP_NS})
    for _ in range(2):  # the second time from the remembered answers of the regex tests and walks
        assert faster_equivalent(own)(page) == own(page)
        assert fastest_equivalent(own)(page) == own(page)


def test_remembered_regex_answers_are_bounded_and_still_right(monkeypatch):
    import pipeline.fast_trafilatura as fast

    monkeypatch.setattr(fast, "_CACHE_LIMIT", 3)
    monkeypatch.setattr(fast, "_regex_answers", {})
    values = ["nav", "menu-x", "footer", "navbar", "", "NAV"] * 2
    assert [fast._regex_test(None, [v], "^nav|menu") for v in values] == \
        [v.startswith("nav") or "menu" in v for v in values]
    assert fast._regex_test(None, ["NAV"], "^nav", "i") and not fast._regex_test(None, [], "^nav")
    assert len(fast._regex_answers) <= 3


@pytest.mark.shared
def test_trafilatura_keeps_its_own_xpaths_after_our_extraction_ends_or_times_out(shared_data):
    def shipped():
        return {name: list(expressions) for name, expressions in _trafilatura_xpath_lists().items()}

    before = shipped()
    assert isinstance(Extractor(ExtractConfig())(_page(shared_data, VOX_PAGE)), Extracted)
    assert Extractor(ExtractConfig(max_seconds=0.001))(_page(shared_data, WSJ_PAGE)).reason == \
        "extract_timeout"
    assert shipped() == before


def _justext_paragraphs(tree) -> list[tuple]:
    """jusText as trafilatura's fallback runs it (trafilatura.external.try_justext, all languages'
    stop words), every paragraph with what its classifier reads and decides."""
    from justext.core import ParagraphMaker, classify_paragraphs, revise_paragraph_classification
    from trafilatura.external import jt_stoplist_init

    paragraphs = ParagraphMaker.make_paragraphs(tree)
    classify_paragraphs(paragraphs, jt_stoplist_init(), 50, 150, 0.1, 0.2, 0.25, True)
    revise_paragraph_classification(paragraphs, 150)
    return [(p.dom_path, p.xpath, p.text, p.chars_count_in_links, p.tags_count, p.is_heading,
             p.class_type) for p in paragraphs]


def test_faster_justext_paragraphs_are_justexts_own(crawled_pages):
    """faster_passes() swaps jusText's element path and paragraph for ones that keep their
    strings (pipeline/fast_trafilatura.py): same paths, texts and classes on every real page."""
    compared = 0
    for html in crawled_pages:
        tree = load_html(html)
        if tree is None:
            continue
        own = _justext_paragraphs(copy.deepcopy(tree))
        with faster_passes():
            faster = _justext_paragraphs(copy.deepcopy(tree))
        assert faster == own
        compared += len(own)
    assert compared > 100  # paragraphs with text were compared, not empty lists


def test_pages_parse_to_the_tree_trafilatura_parses(crawled_pages):
    for html in crawled_pages:
        assert tostring(parse_html(html)) == tostring(load_html(html))


@pytest.mark.shared
def test_title_and_date_come_from_the_page(shared_data):
    result = Extractor(ExtractConfig())(_page(shared_data, VOX_PAGE))
    assert result.title == "The law that’s helping fuel Delhi’s deadly air pollution"
    assert result.date == datetime(2019, 11, 8, tzinfo=timezone.utc)


@pytest.mark.shared
def test_date_is_never_after_the_crawl(shared_data):
    fetched = datetime(2019, 1, 1, tzinfo=timezone.utc)
    result = Extractor(ExtractConfig())(_page(shared_data, VOX_PAGE, fetched_at=fetched))
    assert result.date is None or result.date <= fetched


def test_date_is_read_from_date_markup():
    page = ("<html><body><div class='byline'>Posted on 19 November 2019</div>"
            "<article><p>{}</p></article></body></html>").format("Some text. " * 30)
    result = Extractor(ExtractConfig())(_html(page))
    assert result.date == datetime(2019, 11, 19, tzinfo=timezone.utc)


def test_dates_in_running_text_are_not_searched():
    # htmldate's free-text scan, left out for speed: such a date is as often an item's as the page's
    page = "<html><body><article><p>{} It rained on 2019-11-19.</p></article></body></html>"
    assert Extractor(ExtractConfig())(_html(page.format("Some text. " * 30))).date is None


@pytest.mark.shared
def test_http_charset_of_the_record_is_used(shared_data):
    body = "<html><body><article><p>{}</p></article></body></html>".format("Привет, мир. " * 30)
    result = Extractor(ExtractConfig())(_html(body.encode("cp1251"), http_charset="windows-1251"))
    assert result.text.startswith("Привет, мир.")


def test_output_text_is_nfc():
    decomposed = "Cafe\u0301 au lait. " * 30
    page = f"<html><body><article><p>{decomposed}</p></article></body></html>"
    result = Extractor(ExtractConfig())(_html(page))
    assert result.text == unicodedata.normalize("NFC", decomposed).strip()


def test_text_records_pass_through_stripped_and_nfc():
    record = RawRecord(source="a.jsonl", source_offset=3, kind="text", body="  Cafe\u0301 ouvert.\n",
                       title="Menu")
    assert Extractor(ExtractConfig())(record) == Extracted(text="Café ouvert.", title="Menu", date=None)


def test_empty_text_record_is_rejected_as_no_text():
    record = RawRecord(source="a.jsonl", source_offset=7, kind="text", body=" \n\t")
    result = Extractor(ExtractConfig())(record)
    assert isinstance(result, Rejection)
    assert (result.stage, result.reason, result.source_offset) == ("extract", "no_text", 7)


def test_html_without_main_text_is_rejected_as_no_text():
    page = b"<html><head><title>Menu</title></head><body> </body></html>"
    result = Extractor(ExtractConfig())(_html(page))
    assert (result.stage, result.reason) == ("extract", "no_text")


def test_extraction_shorter_than_min_chars_is_rejected():
    page = "<html><body><article><p>Short but real text here.</p></article></body></html>"
    assert isinstance(Extractor(ExtractConfig())(_html(page)), Extracted)
    assert Extractor(ExtractConfig(min_chars=100))(_html(page)).reason == "no_text"


@pytest.mark.shared
def test_page_over_the_time_cap_is_rejected_with_an_excerpt(shared_data):
    record = _page(shared_data, WSJ_PAGE)
    result = Extractor(ExtractConfig(max_seconds=0.001))(record)
    assert (result.stage, result.reason, result.url) == ("extract", "extract_timeout", record.url)
    assert result.excerpt == record.body[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]


@pytest.mark.shared
def test_time_cap_leaves_no_alarm_or_handler_behind(shared_data):
    before = signal.getsignal(signal.SIGALRM)
    Extractor(ExtractConfig(max_seconds=0.001))(_page(shared_data, WSJ_PAGE))
    Extractor(ExtractConfig())(_page(shared_data, VOX_PAGE))
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.shared
def test_off_the_main_thread_extraction_runs_uncapped(shared_data):
    record, results = _page(shared_data, WSJ_PAGE), []
    extractor = Extractor(ExtractConfig(max_seconds=0.001))
    worker = threading.Thread(target=lambda: results.append(extractor(record)))
    worker.start()
    worker.join()
    assert isinstance(results[0], Extracted)


def test_exception_inside_trafilatura_becomes_extract_error(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("lxml choked")

    monkeypatch.setattr("pipeline.extract.bare_extraction", broken)
    result = Extractor(ExtractConfig())(_html(b"<html><body><p>text</p></body></html>", own_id="doc-1"))
    assert (result.reason, result.detail) == ("extract_error", "ValueError: lxml choked")
    assert result.id == "doc-1"


@pytest.mark.parametrize("body", [b"", b"\x00\xff" * 500, b"%PDF-1.4 binary", "<<<>>>&&&"])
def test_garbage_never_raises(body):
    result = Extractor(ExtractConfig())(_html(body))
    assert isinstance(result, Rejection) and result.stage == "extract"


# ---- the speed-ups change no extracted byte --------------------------------------------------------

GOLDEN = REPO / "tests" / "fixtures" / "extracted_sample.json"


def _sample_html_records() -> list[RawRecord]:
    """Every HTML record of the bundled sample/ (WARC responses and the HTML files), as the build reads them."""
    from pipeline.config import ReadConfig
    from pipeline.readers import expand_inputs, read_unit

    units = expand_inputs([str(REPO / "sample" / "warc"), str(REPO / "sample" / "html")])
    return [r for unit in units for r in read_unit(unit, ReadConfig())
            if isinstance(r, RawRecord) and r.kind == "html"]


def _digests(records: list[RawRecord]) -> dict[str, str]:
    """`file@offset` -> sha256 of what the extractor gives (text, title, date; or the rejection reason)."""
    extractor = Extractor(ExtractConfig())
    digests = {}
    for record in records:
        out = extractor(record)
        what = (out.text, out.title, str(out.date)) if isinstance(out, Extracted) else (out.reason,)
        digests[f"{Path(record.source).name}@{record.source_offset}"] = hashlib.sha256(repr(what).encode()).hexdigest()
    return digests


def _without_speedups(monkeypatch):
    import pipeline.extract

    monkeypatch.setattr(pipeline.extract, "faster_xpaths", contextlib.nullcontext)
    monkeypatch.setattr(pipeline.extract, "faster_passes", contextlib.nullcontext)


def test_bundled_pages_extract_byte_for_byte_as_recorded():
    """tests/fixtures/extracted_sample.json holds the digests of the sample's pages as extracted before
    the speed-ups of pipeline/fast_trafilatura.py (regenerate only for an intended change:
    `json.dump(_digests(_sample_html_records()), ...)`)."""
    assert _digests(_sample_html_records()) == json.loads(GOLDEN.read_text())


@pytest.mark.shared
def test_speedups_change_no_extracted_byte_on_crawled_pages(shared_data, monkeypatch):
    records = _sample_html_records() + _bench_module().warc_html_records(shared_data / "warc")
    fast = _digests(records)
    _without_speedups(monkeypatch)
    assert _digests(records) == fast
