"""trafilatura 2.3.1, made faster without changing what it extracts.

Two pieces, each checked against trafilatura's own behaviour on the shared/data pages by
tests/test_extract.py:
- `parse_html`: the tree `trafilatura.load_html` gives, with lxml's element classes chosen in C;
- `faster_xpaths()`: trafilatura's XPath lists, rewritten to select the same elements faster,
  swapped in only while our extraction runs.
trafilatura is pinned in pyproject.toml because both read its internals; on another version
(pipeline/pins.py) both fall back to trafilatura's public path: `load_html` and its own XPaths.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import trafilatura.xpaths
from lxml import etree
from lxml import html as lxml_html
from lxml.etree import XPath
from lxml.html import HtmlElement
from trafilatura.utils import is_dubious_html, repair_faulty_html

from pipeline.pins import internals_usable

TRAFILATURA_INTERNALS = internals_usable("trafilatura", "parsing with trafilatura.load_html, with its own XPaths")


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


def faster_equivalent(expression: XPath) -> XPath:
    """An XPath selecting the same elements as trafilatura's `expression` (whose only namespace
    prefix is `re:`), in the same order, that libxml2 evaluates faster (see above); the
    expression itself if the rewrite cannot read it."""
    try:
        return XPath(
            faster_xpath(expression.path), namespaces={"re": trafilatura.xpaths.REGEXP_NS},
            smart_strings=False,
        )
    except (ValueError, IndexError, re.error, etree.XPathError):
        return expression


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


class _FasterTrafilaturaXPaths:
    """trafilatura's XPath lists (trafilatura.xpaths, which its modules share by reference), with
    the rewritten expressions swapped in only while our extraction runs: outside it trafilatura
    stays as shipped, for any other caller in the process."""

    def __init__(self):
        self._lists = [
            (shared, list(shared), [faster_equivalent(x) for x in shared])
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


if not TRAFILATURA_INTERNALS:  # the public path (see TRAFILATURA_INTERNALS): same text, slower
    from contextlib import nullcontext as faster_xpaths  # noqa: F811
    from trafilatura import load_html as parse_html  # noqa: F811
