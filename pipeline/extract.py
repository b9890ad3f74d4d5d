"""Main text, title and date of a raw record: HTML through trafilatura, plain text passed through.

`Extractor(cfg)(record)` returns an `Extracted` or a `Rejection` (stage "extract"): `no_text` when
nothing is left, `extract_timeout` past `cfg.max_seconds`, `extract_error` when trafilatura or
lxml raise. It never raises for bad input.

How an HTML page is extracted, and why:

1. `decode_html` (pipeline/charset.py) gives text; lxml parses it once, into the tree
   trafilatura's `load_html` would give (`parse_html`), which title, date and text all read.
2. trafilatura (precision mode) runs *fast* first: its own extractor only, without the readability
   and jusText comparison that costs about a third of its time. The full cascade runs instead
   when the page's <p> text is under MIN_EXTRACTED_SIZE (its own extractor then rarely suffices),
   and again after the fast pass where trafilatura's rules (trafilatura.external.
   compare_extraction) could let that comparison win: a result under MIN_EXTRACTED_SIZE, no
   paragraph text, more tables than paragraphs, or boilerplate elements left in it. The text is
   then the full cascade's on all 20 benchmark pages and all 82 crawled pages (a test checks the
   20), but not by construction: readability also wins where it finds over twice the text, which
   only running it can tell (two crawled home pages come within 4 % of that), and the fast pass
   recovers short pages' text keeping "teaser" blocks the full one drops. Balanced and recall
   modes, and trafilatura's dedup, always run the full cascade.
3. While trafilatura runs, its XPath lists are swapped for rewritten ones that select the same
   elements faster (pipeline/fast_trafilatura.py): a fifth less time; and another 15 % where the
   discard lists, which read only each element's own tag and attributes, become walks over the
   elements that remember each tag and attribute values' answer.
4. Title: trafilatura's meta/<title> rules. Date: htmldate's URL, meta, JSON-LD and markup rules,
   without its free-text scans (`_date` says what that loses), bounded by the crawl date.
   trafilatura's `with_metadata` also extracts author, site name, categories, tags and licence,
   and is 1.3-1.6x slower (bench/results/extract.md).

What each setting costs and gives (F1 on the article-extraction benchmark, docs/s against datatrove's
call): bench/results/extract.md, written by `python -m bench.extract_f1 --speed`. Fast mode alone
falls below F1 0.95; tables stay on, as in datatrove/FineWeb; comments and trafilatura's
cross-document dedup stay off (its result depends on which worker saw a page first).
"""

from __future__ import annotations

import logging
import signal
import threading
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timezone

from htmldate import find_date
from htmldate.core import (
    date_candidates,
    examine_abbr_elements,
    examine_elements,
    examine_header,
    examine_time_elements,
)
from htmldate.extractors import extract_url_date, json_search
from htmldate.utils import Extractor as DateOptions
from htmldate.validators import get_max_date, get_min_date
from lxml.etree import _Element
from lxml.html import HtmlElement
from trafilatura import bare_extraction, extract_metadata
from trafilatura.external import SANITIZED_XPATH
from trafilatura.metadata import examine_meta, extract_title
from trafilatura.settings import Extractor as TrafilaturaOptions

from pipeline.charset import decode_html
from pipeline.config import ExtractConfig
from pipeline.fast_trafilatura import TRAFILATURA_INTERNALS, faster_passes, faster_xpaths, parse_html
from pipeline.pins import internals_usable
from pipeline.records import Document, RawRecord, Rejection
from pipeline.stage import Stage

STAGE = "extract"
# Title, date and the fast pass read trafilatura's and htmldate's internals at their pinned versions
# (pipeline/pins.py); on others, the public calls at the end of this module replace them.
PUBLIC_ONLY = not (TRAFILATURA_INTERNALS & internals_usable("htmldate", "dates from htmldate.find_date"))


@dataclass(slots=True)
class Extracted:
    """Main text of a record (NFC, stripped), its title, and its publication date (UTC) if found."""

    text: str
    title: str | None
    date: datetime | None


class ExtractionTimeout(BaseException):
    """Raised by the SIGALRM handler. A BaseException, so trafilatura's own `except Exception`
    around its fallbacks cannot swallow it."""


class Extractor:
    """Callable turning a `RawRecord` into an `Extracted` or a `Rejection(stage="extract")`.

    Build one per worker process and reuse it: the trafilatura option objects are made once.
    """

    def __init__(self, cfg: ExtractConfig):
        self.cfg = cfg
        common = dict(
            output_format="python",
            precision=cfg.favor_precision,
            recall=cfg.favor_recall,
            comments=cfg.include_comments,
            tables=cfg.include_tables,
            dedup=cfg.deduplicate,
        )
        self._fast = TrafilaturaOptions(fast=True, **common)
        self._full = TrafilaturaOptions(fast=False, **common)
        # The fast pass is exact only in precision mode (see _cascade_may_differ), and with
        # trafilatura's dedup on, a second pass would find the first one's text in its cache.
        self._fast_pass_first = self._full.focus == "precision" and not cfg.deduplicate
        # Every page trafilatura discards becomes a Rejection with its reason; its own per-page
        # warnings would only repeat that on the workers' stderr.
        for name in ("trafilatura", "htmldate", "justext", "readability"):
            logging.getLogger(name).setLevel(logging.CRITICAL)

    def __call__(self, record: RawRecord) -> Extracted | Rejection:
        if record.kind == "text":
            return self._pass_text(record)
        try:
            # the XPaths outermost: the alarm is off again before trafilatura's own are put back
            with faster_xpaths(), faster_passes(), _time_limit(self.cfg.max_seconds):
                return self._extract_html(record)
        except ExtractionTimeout:
            return Rejection.of(record, STAGE, "extract_timeout", f"over {self.cfg.max_seconds:g} s")
        except Exception as err:  # trafilatura, lxml and htmldate raise many types on bad pages
            return Rejection.of(record, STAGE, "extract_error", f"{type(err).__name__}: {err}")

    def _pass_text(self, record: RawRecord) -> Extracted | Rejection:
        body = record.body
        text = body if isinstance(body, str) else decode_html(body, None)[0]
        text = _nfc(text.replace("\x00", "").strip())  # NULs: lxml drops them from HTML; text keeps none either
        if len(text) < max(self.cfg.min_chars, 1):
            return Rejection.of(record, STAGE, "no_text", "empty text record")
        return Extracted(text=text, title=record.title, date=None)

    def _extract_html(self, record: RawRecord) -> Extracted | Rejection:
        body = record.body
        html = body if isinstance(body, str) else decode_html(body, record.http_charset)[0]
        tree = parse_html(html)
        if tree is None:
            return Rejection.of(record, STAGE, "no_text", "not parseable as HTML")
        text = self._main_text(tree)
        if len(text) < max(self.cfg.min_chars, 1):
            return Rejection.of(record, STAGE, "no_text", "no main text found")
        return Extracted(text=text, title=_title(tree), date=_date(tree, record))

    def _main_text(self, tree: HtmlElement) -> str:
        """trafilatura fast mode, then the full cascade where its own rules say it may differ."""
        document = None
        if self._fast_pass_first and _paragraph_text_reaches(tree, self._full.min_extracted_size):
            document = bare_extraction(tree, options=self._fast)
        if document is None or self._cascade_may_differ(document.text, document.body):
            document = bare_extraction(tree, options=self._full)
        return _nfc(document.text.strip()) if document is not None and document.text else ""

    def _cascade_may_differ(self, text: str, body: _Element) -> bool:
        """True where trafilatura's full cascade in precision mode (trafilatura.external.
        compare_extraction) can replace its own result: short, paragraph-less, table-dominated
        or unclean output. (Balanced and recall modes add retries no such test predicts, so
        they always run the full cascade.)"""
        if len(text) < self._full.min_extracted_size:
            return True
        paragraphs = body.findall(".//p")
        if not paragraphs or not body.xpath(".//p//text()"):
            return True
        return len(body.findall(".//table")) > len(paragraphs) or bool(body.xpath(SANITIZED_XPATH))


def _paragraph_text_reaches(tree: HtmlElement, size: int) -> bool:
    """True when the page's <p> elements hold `size` characters of text.

    trafilatura's own extractor builds on paragraphs, and its full cascade consults readability
    and jusText whenever the result is under MIN_EXTRACTED_SIZE; a page whose paragraphs cannot
    reach that size goes straight to the full cascade (20 of 23 such pages in shared/data needed
    it), rather than paying for the fast pass first.
    """
    total = 0
    for paragraph in tree.iter("p"):
        total += len(paragraph.text_content().strip())
        if total >= size:
            return True
    return False


def _title(tree: HtmlElement) -> str | None:
    """Title as trafilatura finds it: og/twitter/DC meta first, then <title> (site name trimmed)
    and <h1>."""
    title = examine_meta(tree).title or extract_title(tree)
    return _nfc(title.strip()) if title and title.strip() else None


def _date(tree: HtmlElement, record: RawRecord) -> datetime | None:
    """Publication date (UTC midnight) from the URL, meta tags, JSON-LD and date markup, or None.

    These are htmldate's `find_date(extensive_search=False, original_date=True)` rules, in its
    order, up to its <time> elements. Left out is what it tries after them, which costs three
    quarters of its time (a copy of the tree, its serialisation, regex scans of the HTML and of
    the page text): a full timestamp anywhere in the HTML (scripts included), image file names,
    "Published: ..." phrases and any bare YYYY-MM-DD in the text. On the 96 extracted shared/data
    pages that keeps 40 of find_date's 46 dates, all the same; of the 6 lost, 2 were timestamps
    in the HTML (a news article; a statistics page, where it was a table row's) and 4 bare dates
    in the text (a news article; three spam listings, where it was an item's, not the page's).
    The markup rules read the tree as parsed, where htmldate first removes <svg>, <iframe>,
    <label>, media and the Wayback Machine banner, so a date inside those can now be found.

    A page cannot be published after it was fetched, so the crawl date bounds the search; that
    also keeps the result the same on every run (htmldate's default bound is today).
    """
    max_date = record.fetched_at.date().isoformat() if record.fetched_at else None
    options = DateOptions(
        extensive=False, max=get_max_date(max_date), min=get_min_date(None), original=True,
        format="%Y-%m-%d",
    )
    url = record.url
    if url is None:
        canonical = tree.find('.//link[@rel="canonical"]')
        url = canonical.get("href") if canonical is not None else None
    found = (
        extract_url_date(url, options)
        or examine_header(tree, options)
        or json_search(tree, options)
        or examine_abbr_elements(tree, options)
        or examine_elements(date_candidates(tree, False), options)
        or examine_elements(tree.xpath(".//title|.//h1"), options)
        or examine_time_elements(tree, options)
    )
    if not found:
        return None
    day = date.fromisoformat(found)
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _nfc(text: str) -> str:
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


@contextmanager
def _time_limit(seconds: float):
    """Raise ExtractionTimeout in the block after `seconds` of wall time.

    SIGALRM can only be handled on the main thread; elsewhere (a thread pool) the block runs
    uncapped. Workers are processes, whose main thread runs the pipeline.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _on_alarm(signum, frame):
        raise ExtractionTimeout

    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        try:
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            # restored even when the alarm fires between the block's end and the line above
            signal.signal(signal.SIGALRM, previous)


class ExtractStage(Stage):
    """The extract stage (`pipeline.stage` protocol): main text, title and date of the record."""

    name = STAGE

    def __init__(self, cfg: ExtractConfig):
        self.extractor = Extractor(cfg)

    def __call__(self, doc: Document) -> Document | Rejection:
        extracted = self.extractor(doc.record)
        if isinstance(extracted, Rejection):
            return extracted
        doc.text, doc.published_at = extracted.text, extracted.date
        doc.title = extracted.title or doc.record.title
        return doc


def _public_title(tree: HtmlElement) -> str | None:
    title = extract_metadata(tree, extensive=False).title
    return _nfc(title.strip()) if title and title.strip() else None


def _public_date(tree: HtmlElement, record: RawRecord) -> datetime | None:
    max_date = record.fetched_at.date().isoformat() if record.fetched_at else None
    found = find_date(tree, extensive_search=False, original_date=True, url=record.url, max_date=max_date)
    return datetime.combine(date.fromisoformat(found), time(), timezone.utc) if found else None


if PUBLIC_ONLY:  # trafilatura's and htmldate's public calls; every page gets the full cascade
    _title, _date = _public_title, _public_date  # noqa: F811
    Extractor._cascade_may_differ = lambda self, text, body: True
