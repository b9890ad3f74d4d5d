"""trafilatura 2.3.1, made faster without changing what it extracts.

Three pieces, each checked against trafilatura's own behaviour on the shared/data pages by
tests/test_extract.py:
- `parse_html`: the tree `trafilatura.load_html` gives, with lxml's element classes chosen in C;
- `faster_xpaths()`: trafilatura's XPath lists, rewritten to select the same elements faster
  (their regex tests remembering their answers; those that read only each element's own tag and
  attributes, the discard lists above all, as a walk over the elements remembering the answer for
  each tag and attribute values), swapped in only while our extraction runs;
- `faster_passes()`: trafilatura's section pruning answering its four discard lists with one walk
  over each frame instead of one walk per expression, its link-density pass reading each link's
  text once per pass instead of once per enclosing element, and its jusText fallback building its
  stop-word set once instead of once per page, keeping its paragraphs' element paths as strings
  and normalising each paragraph's text once; also only while our extraction runs.
trafilatura is pinned in pyproject.toml because all three read its internals; on another version
(pipeline/pins.py) they fall back to trafilatura's public path: `load_html`, its own XPaths and passes.

Where the rest of the time goes (cProfile and CPU-seconds on the 82 HTML responses of shared/data,
2026-12-04), and what did not help:
- trafilatura's XPath pruning was a third of the extraction CPU: the discard lists, evaluated
  again on every candidate frame and on the whole tree for the recovery pass. Spelling the regex
  alternations out as contains()/starts-with() in XPath (no callback) selects the same elements
  but is 3x slower: libxml2 re-reads the attribute for every literal. Without any callback the
  largest discard expression still took 2.5 us per element in libxml2: its predicate, not the
  regexes, was the cost, hence the walks (`_LocalPredicate`): 15 % less extraction CPU. The walks
  then took a fifth of what remained, most of it in the five over each candidate frame, which
  `prune_in_one_walk` makes one (2026-12-05: 7-8 % less extraction CPU).
- On the big pages (290-780 KB: data.gov.uk listings and statistics tables) the time goes to
  that pruning, the link-density passes, table handling and, where the page's own extractor
  finds too little, readability and jusText: work on the page's real markup. Removing <script>,
  <style>, <noscript>, <svg>, <template> and <iframe> from the parsed tree before trafilatura
  runs changes no text on these pages and saves nothing measurable (lxml skips their text
  cheaply), so it is not done.
- The fast pass followed by the full cascade (pipeline/extract.py) happens on 5 of the 82
  pages and costs 1 % of the time: not worth reusing the fast pass's result.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import justext.core
import justext.paragraph
import trafilatura.external
import trafilatura.htmlprocessing
import trafilatura.main_extractor
import trafilatura.xpaths
from lxml import etree
from lxml import html as lxml_html
from lxml.etree import XPath
from lxml.html import HtmlElement
from trafilatura.utils import is_dubious_html, repair_faulty_html, trim
from trafilatura.xml import delete_element

from pipeline.pins import internals_usable

TRAFILATURA_INTERNALS = internals_usable("trafilatura", "parsing with trafilatura.load_html, with its own XPaths")
JUSTEXT_INTERNALS = internals_usable("justext", "jusText's stop-word set built on every page that needs it")


# ---------------------------------------------------------------------------------------------
# Parsing: trafilatura's own parser settings, with lxml's element classes chosen in C


# trafilatura.utils.HTML_PARSER's settings. lxml.html's parsers pick each element's Python class
# by calling back into Python (form, input, select, textarea and label get classes of their own),
# once for every element object lxml creates; trafilatura creates hundreds of thousands per page
# (every XPath result, every iteration). A C-level lookup giving every element lxml.html's
# HtmlElement saves about 3 % of the extraction time; trafilatura, readability, jusText and
# htmldate use no form-field methods, so their results are unchanged.
_HTML_PARSER = lxml_html.HTMLParser(
    collect_ids=False, default_doctype=False, encoding="utf-8", remove_comments=True,
    remove_pis=True,
)
_HTML_PARSER.set_element_class_lookup(
    etree.ElementDefaultClassLookup(
        element=lxml_html.HtmlElement, comment=lxml_html.HtmlComment,
        pi=lxml_html.HtmlProcessingInstruction, entity=lxml_html.HtmlEntity,
    )
)


def parse_html(html: str) -> HtmlElement | None:
    """The tree `trafilatura.load_html(html)` gives for a decoded page (same repairs, same
    fallback to bytes, same rejection of non-HTML), parsed with `_HTML_PARSER`; None when the
    text is not HTML."""
    beginning = html[:50].lower()
    html = repair_faulty_html(html, beginning)
    tree, parsed_bytes = None, False
    try:
        tree = lxml_html.fromstring(html, parser=_HTML_PARSER)
    except ValueError:  # a str that declares an encoding: lxml wants bytes
        tree, parsed_bytes = _parse_utf8(html), True
    except Exception:  # lxml's other parse errors: trafilatura retries as bytes, as below
        pass
    if (tree is None or len(tree) < 1) and not parsed_bytes:
        tree = _parse_utf8(html)
    if tree is not None and is_dubious_html(beginning) and len(tree) < 2:
        return None
    return tree


def _parse_utf8(html: str) -> HtmlElement | None:
    try:
        return lxml_html.fromstring(html.encode("utf8", "surrogatepass"), parser=_HTML_PARSER)
    except Exception:
        return None


# ---------------------------------------------------------------------------------------------
# trafilatura's XPath expressions, rewritten to select the same elements faster
#
# Pruning the tree with trafilatura's XPath lists is a third of its time. libxml2 evaluates them
# slowly for two reasons that a rewrite removes without changing what they select:
#
# - every `re:test(@class, 'regex')` calls back into Python, even for an element without the
#   attribute. Such an element's attribute string is empty; for a regex that cannot match the
#   empty string the test is then false, so `((@class) and re:test(...))` selects the same
#   elements and calls back only where the attribute exists.
# - `.//*[self::div or self::p][...]` evaluates a predicate on every element. A union of name
#   steps, `(.//div|.//p)[...]`, selects the same elements in the same (document) order, with
#   libxml2's C name test; the following predicates see another context position and size,
#   so the rewrite is made only where they cannot depend on them (no number, no position(),
#   last(), count() and the like).
#
# With `smart_strings=False` the attribute values handed to re:test are plain strings instead of
# objects tied to their element (the expressions select elements, so their results are the
# same). Together: 40 % less time in these XPaths, 22 % less extraction time on the shared/data
# pages. A test checks that every rewritten expression selects what trafilatura's own does there.
#
# A third rewrite: `re:test(@attr, 'regex')` becomes `tm:test(...)`, `_regex_test`, which is
# lxml's EXSLT re:test (lxml/extensions.pxi, `_ExsltRegExp.test`: the first node's string, the
# regex compiled with re.IGNORECASE where the flags hold "i", true where `search` finds it)
# remembering its answer for each (string, regex, flags). The same class and id values recur on
# every element of a page and every page of a site, and trafilatura tests each against a dozen
# long alternations several times per page (every candidate frame is pruned again): the regex
# searches were half the cost of those callbacks. Still exact, by construction. The 82 crawled
# pages of shared/data leave 9,400 answers (1.6 MB); after _CACHE_LIMIT (about 9 MB) the memory
# starts again empty, so a worker's memory stays bounded on any crawl.

_REGEX_TEST = re.compile(
    r"re:test\(\s*(@[\w-]+(?:\s*\|\s*@[\w-]+)*)\s*,\s*'([^']*)'\s*(?:,\s*'([^']*)'\s*)?\)"
)
# `.//*[self::a or self::b]` (or `//*[...]`) where a new path starts: not the tail of `x//*`
_SELF_AXIS_STEP = re.compile(
    r"(?:^|(?<=[\s(|\[]))(\.?//)\*\[\s*(self::[\w-]+(?:\s+or\s+self::[\w-]+)*)\s*\]"
)
# What could make a predicate positional: a number, a numeric function or operator, a variable,
# an extension function other than re:test. Conservative: a name like h1 or not(...) is fine.
_MAY_BE_POSITIONAL = re.compile(
    r"(?<![\w.-])\d|\b(?:position|last|count|string-length|sum|number|floor|ceiling|round)\s*\("
    r"|\bdiv\b|\bmod\b|\+|\$|\s-|-\s|(?<![/:])\*|(?<!:)\b(?!re:test\b)[\w-]+:[\w-]+\s*\("
)
_XPATH_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")


_TM_NS = "tokenmill:regex-test"
_CACHE_LIMIT = 50_000
_regex_answers: dict[tuple[str, str, str], bool] = {}
_compiled: dict[tuple[str, bool], re.Pattern] = {}


def _regex_test(_context, value, regex: str, flags: str = "") -> bool:
    """lxml's EXSLT `re:test(value, regex, flags)`, its answers remembered (see above). `value`
    is an attribute node set: with smart_strings=False, a list of plain strings."""
    if type(value) is list:
        value = value[0] if value else ""
    if type(value) is not str:  # not what the rewrite passes; lxml would read an element's text
        raise TypeError(f"tm:test takes attribute values, not {type(value).__name__}")
    key = (value, regex, flags)
    answer = _regex_answers.get(key)
    if answer is None:
        ignore_case = "i" in flags
        pattern = _compiled.get((regex, ignore_case))
        if pattern is None:
            pattern = _compiled[regex, ignore_case] = re.compile(
                regex, re.UNICODE | re.IGNORECASE if ignore_case else re.UNICODE)
        if len(_regex_answers) >= _CACHE_LIMIT:
            _regex_answers.clear()
        answer = _regex_answers[key] = pattern.search(value) is not None
    return answer


def faster_equivalent(expression: XPath) -> XPath:
    """An XPath selecting the same elements as trafilatura's `expression` (whose only namespace
    prefix is `re:`), in the same order, that libxml2 evaluates faster (see above); the
    expression itself if the rewrite cannot read it."""
    try:
        return XPath(
            _remembered_regex_tests(faster_xpath(expression.path)),
            namespaces={"re": trafilatura.xpaths.REGEXP_NS, "tm": _TM_NS},
            extensions={(_TM_NS, "test"): _regex_test}, smart_strings=False,
        )
    except (ValueError, IndexError, re.error, etree.XPathError):
        return expression


def _remembered_regex_tests(path: str) -> str:
    """`path` with its re:test calls on attributes calling `_regex_test` instead."""
    return _REGEX_TEST.sub(lambda match: "tm:" + match.group(0).removeprefix("re:"), path)


def faster_xpath(path: str) -> str:
    """An XPath expression selecting the same nodes as `path`, in the same order, that libxml2
    evaluates faster; `path` itself where no rewrite applies."""
    return _union_of_name_steps(_guard_regex_tests(path))


def _guard_regex_tests(path: str) -> str:
    def guarded(match: re.Match) -> str:
        attributes, regex, flags = match.groups()
        if re.search(regex, "", re.IGNORECASE if flags and "i" in flags else 0):
            return match.group(0)  # true on a missing attribute: the guard would change it
        presence = " or ".join(name.strip() for name in attributes.split("|"))
        return f"(({presence}) and {match.group(0)})"

    return _REGEX_TEST.sub(guarded, path)


def _union_of_name_steps(path: str) -> str:
    parts, done = [], 0
    for match in _SELF_AXIS_STEP.finditer(path):
        if match.start() < done:
            continue
        end = _end_of_predicates(path, match.end())
        predicates = path[match.end() : end]
        if _MAY_BE_POSITIONAL.search(_XPATH_LITERAL.sub("''", predicates)):
            continue
        axis, tests = match.groups()
        names = [test.strip().removeprefix("self::") for test in tests.split(" or ")]
        parts += [path[done : match.start()], "(", "|".join(axis + name for name in names), ")",
                  predicates]
        done = end
    return "".join(parts) + path[done:]


def _end_of_predicates(path: str, start: int) -> int:
    """Index after the `[...]` predicates that begin at `start` (string literals skipped)."""
    i = start
    while i < len(path) and path[i] == "[":
        depth = 0
        while True:
            char = path[i]
            if char in "'\"":
                i = path.index(char, i + 1)
            elif char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
                if depth == 0:
                    i += 1
                    break
            i += 1
    return i


# A fourth rewrite, for the discard lists' commonest shape, `.//*[P]` (or `.//*[self::a or
# self::b][P]`) where the predicates P read nothing but the element's own tag and attributes (no
# other axis, no text, no number, so no position either): libxml2 spends about 2 us per element
# on such a predicate (every @x a fresh node set, every comparison a fresh string), and trafilatura
# evaluates OVERALL_DISCARD_XPATH's on every element of every candidate frame, of the recovery
# pass's tree and of readability's input. Which elements P selects is then a function of each
# element's tag and the values (and order) of the attributes P names: `_LocalPredicate` walks the
# descendants in document order, as `.//*` selects them, and evaluates P with libxml2 only once
# per distinct (tag, attribute values) on the element itself (`self::*[P]`), remembering the
# answer. The same few class and id values recur on every element of a page and across pages.
# BODY_XPATH's `(.//*[P])[1]` (the first such element: the walk stops there) and `.//*[P][1]`
# (each that is the first such among its siblings) are walked the same way. A predicate with a
# single attribute test stays with libxml2, which is then as fast as the walk. On the 82 crawled
# pages of shared/data: 2-3x less time in these expressions, 15 % less extraction CPU; a test
# checks every walk selects what trafilatura's own XPath does on each page, raw and converted.

_LOCAL_PREDICATE_TOKENS = re.compile(
    r"\s+|@[\w-]+|self::[\w-]+|(?:re:test|contains|starts-with|translate|not)\s*\(|\bor\b|\band\b"
    r"|!?=|''|[()|,\[\]]"
)
_ONLY_NAME_TESTS = re.compile(r"\[\s*self::[\w-]+(?:\s+or\s+self::[\w-]+)*\s*\]")
# answers kept per expression: the 82 crawled pages of shared/data leave at most 1,500 (8,000 in
# all, 2-3 MB); past the limit an expression starts again empty, so a worker's memory stays
# bounded (about 1.5 MB an expression) on any crawl
_LOCAL_CACHE_LIMIT = 5_000


class _LocalPredicate:
    """`own` (`.//*` and local predicates, see above) as a walk over the descendants. `first`:
    own is `(.//*[P])[1]`, the first such element; `first_of_siblings`: own is `.//*[P][1]`,
    each one that no earlier sibling of its own precedes (the walk meets siblings in order)."""

    __slots__ = ("path", "_fallback", "_test", "tags", "names", "_answers", "_first",
                 "_first_of_siblings")

    def __init__(self, own: XPath, fallback, predicates: str, names: tuple[str, ...],
                 tags: tuple[str, ...], first: bool = False, first_of_siblings: bool = False):
        self.path = own.path
        self._fallback = fallback
        self._test = faster_equivalent(XPath("self::*" + predicates,
                                             namespaces={"re": trafilatura.xpaths.REGEXP_NS}))
        self.tags = tags
        self.names = frozenset(names)
        self._answers: dict = {}
        self._first = first
        self._first_of_siblings = first_of_siblings

    @property
    def mergeable(self) -> bool:
        """Plain `.//*[P]`: what it selects from a tree is each element's own answer, so one walk
        can answer it together with other such expressions (`prune_in_one_walk`)."""
        return not (self._first or self._first_of_siblings)

    def test(self, element) -> bool:
        """P on this one element, ignoring the other elements (what the walk asks on a miss)."""
        return (not self.tags or element.tag in self.tags) and bool(self._test(element))

    def __call__(self, tree):
        if not isinstance(tree, etree._Element):  # a document: `.//*` includes its root element
            return self._fallback(tree)
        answers, names, test = self._answers, self.names, self._test
        if len(answers) >= _LOCAL_CACHE_LIMIT:
            answers.clear()
        selected = []
        parents = set() if self._first_of_siblings else None
        for element in tree.iterdescendants(*self.tags) if self.tags else tree.iterdescendants(etree.Element):
            answer = answers.get(key := _element_key(element, names))
            if answer is None:
                answer = answers[key] = bool(test(element))
            if answer:
                if parents is not None:
                    parent = element.getparent()
                    if parent in parents:
                        continue
                    parents.add(parent)
                selected.append(element)
                if self._first:
                    break
        return selected


def _element_key(element, names: frozenset[str]):
    """What a local predicate naming the attributes `names` can read of `element`: its tag and
    those attributes, names and values, in the element's own order (a union like @id|@class reads
    the first of them in that order). One `items()` call: cheaper than a `get` per name."""
    items = element.items()
    if not items:  # about half the elements of a page
        return element.tag
    return (element.tag, *[item for item in items if item[0] in names])


def fastest_equivalent(expression: XPath):
    """A callable selecting what trafilatura's `expression` selects, in the same order: a
    `_LocalPredicate` where the expression's shape allows, else `faster_equivalent`'s XPath."""
    faster = faster_equivalent(expression)
    try:
        return _local_predicate(expression, faster) or faster
    except (ValueError, IndexError, re.error, etree.XPathError):
        return faster


_FIRST_OF_ALL = re.compile(r"^\(\s*(.*?)\s*\)\s*\[\s*1\s*\]$", re.DOTALL)
_FIRST_OF_SIBLINGS = re.compile(r"\[\s*1\s*\]$")


def _local_predicate(own: XPath, fallback) -> _LocalPredicate | None:
    """`_LocalPredicate` for `own` where its shape allows (see above), else None."""
    path = own.path.strip()
    first = first_of_siblings = False
    if match := _FIRST_OF_ALL.match(path):
        path, first = match.group(1), True
    elif _FIRST_OF_SIBLINGS.search(path):
        path, first_of_siblings = _FIRST_OF_SIBLINGS.sub("", path).rstrip(), True
    if not path.startswith(".//*[") or _end_of_predicates(path, 4) != len(path):
        return None
    predicates = path[4:]
    bare = _XPATH_LITERAL.sub("''", predicates)
    if _LOCAL_PREDICATE_TOKENS.sub("", bare):  # something else than the local tokens
        return None
    tested = re.findall(r"@([\w-]+)", bare)
    if len(tested) < 2 and not (first or first_of_siblings):
        return None  # one cheap attribute test: libxml2 alone is as fast as the walk
    names = tuple(dict.fromkeys(tested))
    only_names = _ONLY_NAME_TESTS.match(predicates)
    tags = tuple(re.findall(r"self::([\w-]+)", only_names.group(0))) if only_names else ()
    return _LocalPredicate(own, fallback, predicates, names, tags, first, first_of_siblings)


class _FasterTrafilaturaXPaths:
    """trafilatura's XPath lists (trafilatura.xpaths, which its modules share by reference), with
    the rewritten expressions swapped in only while our extraction runs: outside it trafilatura
    stays as shipped, for any other caller in the process."""

    def __init__(self):
        self._lists = [
            (shared, list(shared), [fastest_equivalent(x) for x in shared])
            for shared in vars(trafilatura.xpaths).values()
            if isinstance(shared, list) and shared and all(isinstance(x, XPath) for x in shared)
        ]

    @contextmanager
    def swapped_in(self):
        for shared, _, faster in self._lists:
            shared[:] = faster
        try:
            yield
        finally:
            for shared, original, _ in self._lists:
                shared[:] = original


_FASTER_XPATHS = _FasterTrafilaturaXPaths()


def faster_xpaths():
    """Context manager: trafilatura's XPath lists swapped for the faster equivalents while inside."""
    return _FASTER_XPATHS.swapped_in()


# trafilatura prunes each candidate frame with up to four discard lists in a row (overall, images,
# teasers, precision: `prune_unwanted_sections`), each expression a walk over the whole frame of
# its own: five walks, most of the time in these lists. Which elements a plain `.//*[P]` walk
# selects depends on nothing but each element's tag and attributes, which pruning never changes;
# pruning only detaches subtrees. So one walk answers all five. Each expression, at its turn,
# deletes its answers: those still attached are what its own walk over the pruned frame would
# select, in the same order, and deleting the others only edits subtrees already detached. The
# guarded list (with_backup) measures text, so it counts only the attached ones. Expressions of
# other shapes run at their turn as before.


def prune_in_one_walk(tree, plan: list[tuple[list, bool]]):
    """trafilatura's `prune_unwanted_nodes(tree, nodelist, with_backup)` for each (nodelist,
    with_backup) of `plan` in turn, with the plain walks among them answered by one walk."""
    walks = [e for nodelist, _ in plan for e in nodelist if isinstance(e, _LocalPredicate) and e.mergeable]
    if len(walks) < 2 or not isinstance(tree, etree._Element):
        for nodelist, with_backup in plan:
            tree = trafilatura.htmlprocessing.prune_unwanted_nodes(tree, nodelist, with_backup)
        return tree
    answered = dict(zip(map(id, walks), _walk_once(tree, walks)))

    def selection(expression) -> list:
        if (found := answered.get(id(expression))) is None:
            return expression(tree)
        return [element for element in found if _attached(element, tree)]

    for nodelist, with_backup in plan:
        if not with_backup:
            # a selected element below one deleted before it is deleted from the detached subtree,
            # as trafilatura's own walk would not: the tree is the same either way
            for expression in nodelist:
                found = answered.get(id(expression))
                for subtree in expression(tree) if found is None else found:
                    delete_element(subtree)
            continue
        # trafilatura's guard, as in prune_unwanted_nodes: prune nothing that removes too much text
        matches = dict.fromkeys(element for expression in nodelist for element in selection(expression))
        outer = [e for e in matches if not any(a in matches for a in e.iterancestors())]
        old_len = len(tree.text_content())
        if old_len - sum(len(e.text_content()) for e in outer) > old_len / 7:
            for element in outer:
                delete_element(element)
    return tree


_MERGED_ANSWERS: dict[tuple, dict] = {}  # per set of walks: element key -> indices of the walks it answers


def _walk_once(tree, walks: list[_LocalPredicate]) -> list[list]:
    """What each walk selects from `tree`, in one pass over its elements."""
    names = frozenset().union(*(w.names for w in walks))
    answers = _MERGED_ANSWERS.setdefault(tuple(walks), {})
    if len(answers) >= _LOCAL_CACHE_LIMIT:
        answers.clear()
    selected: list[list] = [[] for _ in walks]
    tags = () if any(not w.tags for w in walks) else tuple(dict.fromkeys(t for w in walks for t in w.tags))
    for element in tree.iterdescendants(*tags) if tags else tree.iterdescendants(etree.Element):
        which = answers.get(key := _element_key(element, names))
        if which is None:
            which = answers[key] = tuple(i for i, walk in enumerate(walks) if walk.test(element))
        for i in which:
            selected[i].append(element)
    return selected


def _attached(element, root) -> bool:
    """Whether `element` is still below `root`: pruning detaches a subtree at its top."""
    for ancestor in element.iterancestors():
        if ancestor is root:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Two of trafilatura's passes without their repeated work: `faster_passes()` (which also puts in
# the section pruning of `prune_in_one_walk`, above)
#
# - The link-density pass: `delete_by_link_density(tree, tag)` tests every <div> (or list, p, ...)
#   of the tree and, for most, measures the trimmed text of every link inside it
#   (`collect_link_info`). Nested elements share their links, so on a page of deeply nested <div>s
#   each link's text is read and trimmed once per enclosing <div>: quadratic in the nesting, a
#   large share of the time on big link-heavy pages. The pass changes nothing in the tree until its
#   tests are all done, so within one pass a link's text is a function of the link: read once, kept
#   by element, dropped with the pass. `collect_link_info` is trafilatura 2.3.1's, with the texts
#   looked up instead of re-read.
# - jusText's stop words: where trafilatura's jusText fallback has no language, it passes the
#   stop words of all 100 jusText languages (154,000, as a tuple) and jusText lower-cases them into
#   a new frozenset on every page (10 ms), after trafilatura built the tuple on first use (140 ms).
#   Here the lower-cased set is made once, on first use, and handed through as it is.
# - jusText's paragraphs: its ParagraphMaker opens a Paragraph at every block element's start and
#   end (most stay empty and are dropped), and each one joins the whole element path into two
#   strings (`PathInfo.dom`, `.xpath`): O(depth) per element, on deep pages the larger part of
#   building the paragraphs. The classifier then re-joins and re-normalises a paragraph's text
#   on each of its five or so reads. `_PathInfo` keeps both path strings with each level (one
#   concatenation per element, the same strings), and `_Paragraph` keeps its text once made,
#   remade only if a text node was appended since (jusText only ever appends).


@contextmanager
def _patched(namespace, **values):
    saved = {name: getattr(namespace, name) for name in values}
    for name, value in values.items():
        setattr(namespace, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(namespace, name, value)


class _FasterPasses:
    def __init__(self):
        self._link_texts: dict | None = None  # element -> trimmed text, during one pass only
        self._link_pass = trafilatura.main_extractor.delete_by_link_density
        self._collect = trafilatura.htmlprocessing.collect_link_info
        self._define_stoplist = justext.core.define_stoplist
        self._jt_stoplist_init = trafilatura.external.jt_stoplist_init
        self._prune_sections = trafilatura.main_extractor.prune_unwanted_sections
        self._all_stop_words: frozenset | None = None

    def link_density_pass(self, *args, **kwargs):
        self._link_texts = {}
        try:
            return self._link_pass(*args, **kwargs)
        finally:
            self._link_texts = None

    def collect_link_info(self, links_xpath):
        texts = self._link_texts
        if texts is None:  # a caller outside the pass (the table test): as shipped
            return self._collect(links_xpath)
        mylist = []
        for elem in links_xpath:
            text = texts.get(elem)
            if text is None:
                text = texts[elem] = trim(elem.text_content())
            if text:
                mylist.append(text)
        lengths = list(map(len, mylist))
        return sum(lengths), len(mylist), sum(1 for length in lengths if length < 10), mylist

    def prune_unwanted_sections(self, tree, potential_tags, options, keep_teasers=False):
        """trafilatura's, its four discard lists pruned by `prune_in_one_walk` (the same lists, under
        the same conditions, in the same order), then the rest of it as shipped."""
        xpaths = trafilatura.xpaths
        plan = [(xpaths.OVERALL_DISCARD_XPATH, True)]
        if "graphic" not in potential_tags:
            plan.append((xpaths.DISCARD_IMAGE_ELEMENTS, False))
        if options.focus != "recall":
            if not keep_teasers:
                plan.append((xpaths.TEASER_DISCARD_XPATH, False))
            if options.focus == "precision":
                plan.append((xpaths.PRECISION_DISCARD_XPATH, False))
        tree = prune_in_one_walk(tree, plan)
        with _patched(trafilatura.main_extractor, prune_unwanted_nodes=_pruned_already):
            return self._prune_sections(tree, potential_tags, options, keep_teasers)

    def all_stop_words(self):
        """trafilatura's `jt_stoplist_init()` as jusText's `define_stoplist` turns it into a set."""
        if self._all_stop_words is None:
            self._all_stop_words = self._define_stoplist(self._jt_stoplist_init())
        return self._all_stop_words

    def define_stoplist(self, stoplist):
        return stoplist if stoplist is self._all_stop_words else self._define_stoplist(stoplist)

    @contextmanager
    def swapped_in(self):
        with _patched(justext.core, PathInfo=_PathInfo, Paragraph=_Paragraph), \
                _patched(trafilatura.main_extractor, delete_by_link_density=self.link_density_pass,
                         prune_unwanted_sections=self.prune_unwanted_sections), \
                _patched(trafilatura.htmlprocessing, collect_link_info=self.collect_link_info):
            if not JUSTEXT_INTERNALS:
                yield
                return
            with _patched(trafilatura.external, JT_STOPLIST=None, jt_stoplist_init=self.all_stop_words), \
                    _patched(justext.core, define_stoplist=self.define_stoplist):
                yield


def _pruned_already(tree, nodelist, with_backup=False):
    """prune_unwanted_nodes inside our prune_unwanted_sections: its lists were pruned before it ran."""
    return tree


class _PathInfo:
    """justext 3.0.2's `core.PathInfo` (the element path of ParagraphMaker's SAX walk), with the
    `dom` and `xpath` strings of each level computed when the level is entered."""

    __slots__ = ("_elements",)

    def __init__(self):
        # (tag name, order among its same-named siblings, children's counts, dom, xpath) per level
        self._elements: list[tuple[str, int, dict, str, str]] = []

    @property
    def dom(self) -> str:
        return self._elements[-1][3] if self._elements else ""

    @property
    def xpath(self) -> str:
        return self._elements[-1][4] if self._elements else "/"

    def append(self, tag_name: str) -> _PathInfo:
        elements = self._elements
        if elements:
            _, _, children, dom, xpath = elements[-1]
            order = children[tag_name] = children.get(tag_name, 0) + 1
            elements.append((tag_name, order, {}, f"{dom}.{tag_name}", f"{xpath}/{tag_name}[{order}]"))
        else:  # justext counts a root's order in a fresh dict each time: always 1
            elements.append((tag_name, 1, {}, tag_name, f"/{tag_name}[1]"))
        return self

    def pop(self) -> _PathInfo:
        self._elements.pop()
        return self


class _Paragraph(justext.paragraph.Paragraph):
    """justext 3.0.2's Paragraph, its `text` computed once per set of text nodes."""

    _text_of: int = -1  # how many text nodes `_text` was made from

    @property
    def text(self) -> str:
        if self._text_of != len(self.text_nodes):
            self._text = justext.paragraph.Paragraph.text.fget(self)
            self._text_of = len(self.text_nodes)
        return self._text


_FASTER_PASSES = _FasterPasses() if TRAFILATURA_INTERNALS else None


def faster_passes():
    """Context manager: trafilatura's link-density pass and jusText fallback without their repeated
    work (see above), while inside."""
    return _FASTER_PASSES.swapped_in()


if not TRAFILATURA_INTERNALS:  # the public path (see TRAFILATURA_INTERNALS): same text, slower
    from contextlib import nullcontext as faster_passes  # noqa: F811
    from contextlib import nullcontext as faster_xpaths  # noqa: F811
    from trafilatura import load_html as parse_html  # noqa: F811
