"""Measuring a deduplicator (tests/test_dedup_stage.py, bench/bench_dedup.py): brute-force ground truth,
near-copies of real text, real twins.

Ground truth is the exact Jaccard similarity of every pair of documents that share at least one
shingle (an inverted index finds them; all other pairs have J = 0). Recall is over pairs with
J >= 0.85: a pair counts as found when at most one of its two documents is kept. Precision is
over removed documents: one is right when it has a twin with J >= 0.7 in the corpus.

The corpora are real text: chapters of the Project Gutenberg books with their Latin-1 twins and an
older edition, gov.uk pages from a crawl and its recrawl, and near-copies of real paragraphs made
with small word edits and added boilerplate lines, as templated sites and scrapers make them.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.dedup.shingles import jaccard, shingle_set

BOILERPLATE = [
    "Share this page on Facebook, Twitter or by email.",
    "Cookies on this site: we use cookies to make the site simpler. Find out more.",
    "All content is available under the Open Government Licence, except where otherwise stated.",
    "Subscribe to our newsletter for weekly updates.",
    "Skip to main content",
    "Print this page",
    "Related articles",
    "Posted in Uncategorized | Leave a comment",
]


def paragraph_chunks(text: str, words_per_doc: int) -> list[str]:
    """Consecutive blank-line paragraphs grouped into documents of about `words_per_doc` words."""
    docs, current, count = [], [], 0
    for paragraph in re.split(r"\n\s*\n", text):
        if not paragraph.strip():
            continue
        current.append(paragraph.strip())
        count += len(paragraph.split())
        if count >= words_per_doc:
            docs.append("\n\n".join(current))
            current, count = [], 0
    if current:
        docs.append("\n\n".join(current))
    return docs


def gutenberg_docs(folder: Path, words_per_doc: int = 1500) -> list[tuple[str, str]]:
    """(name, text) chapter-sized documents of every book .txt in the folder.

    The `_LATIN1-VARIANT_` files are Latin-1 encoded; the rest UTF-8. The licence file is skipped.
    """
    docs = []
    for path in sorted(folder.glob("pg*.txt")):
        encoding = "latin-1" if "_LATIN1-VARIANT_" in path.name else "utf-8"
        text = path.read_text(encoding=encoding)
        docs += [(f"{path.stem}#{i}", chunk) for i, chunk in enumerate(paragraph_chunks(text, words_per_doc))]
    return docs


def warc_pages(path: Path, min_words: int = 20) -> list[tuple[str, str]]:
    """(url, main text) of the HTML responses of a WARC file, extracted with trafilatura."""
    import trafilatura
    from warcio.archiveiterator import ArchiveIterator

    pages = []
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream):
            if record.rec_type != "response" or record.http_headers is None:
                continue
            if "html" not in (record.http_headers.get_header("Content-Type") or ""):
                continue
            url = record.rec_headers.get_header("WARC-Target-URI")
            text = trafilatura.extract(record.content_stream().read(), favor_precision=True, deduplicate=False)
            if text and len(text.split()) >= min_words:
                pages.append((url, text))
    return pages


def near_copy(text: str, rng: random.Random, edit_rate: float, boilerplate_lines: int) -> str:
    """`text` with a fraction of its words replaced, deleted or duplicated, and boilerplate added.

    Edits keep the line structure; boilerplate lines go at the top and the bottom, as a
    site template adds them.
    """
    lines = []
    for line in text.split("\n"):
        words = line.split(" ")
        edited = []
        for word in words:
            roll = rng.random()
            if roll < edit_rate / 3:
                edited.append(rng.choice(["the", "a", "of", "new", "said", "it", "there"]))
            elif roll < 2 * edit_rate / 3:
                continue
            elif roll < edit_rate:
                edited += [word, word]
            else:
                edited.append(word)
        lines.append(" ".join(edited))
    extra = rng.sample(BOILERPLATE, boilerplate_lines)
    head, tail = extra[: boilerplate_lines // 2], extra[boilerplate_lines // 2 :]
    return "\n".join([*head, *lines, *tail])


def near_copies(
    texts: list[str], seed: int = 0, edit_rates=(0.01, 0.02, 0.05, 0.1, 0.2), boilerplate=(0, 1, 2, 3)
) -> list[str]:
    """One near-copy of each text, with its edit rate and boilerplate count cycling over the given values."""
    rng = random.Random(seed)
    return [
        near_copy(text, rng, edit_rates[i % len(edit_rates)], boilerplate[i % len(boilerplate)])
        for i, text in enumerate(texts)
    ]


def similar_pairs(texts: list[str], n: int = 5, min_jaccard: float = 0.0) -> dict[tuple[int, int], float]:
    """Exact Jaccard of every pair (i < j) that shares a shingle, keeping those >= min_jaccard."""
    sets = [shingle_set(text, n) for text in texts]
    index: dict[str, list[int]] = defaultdict(list)
    for i, shingles in enumerate(sets):
        for shingle in shingles:
            index[shingle].append(i)
    sharing = {(a, b) for docs in index.values() for k, a in enumerate(docs) for b in docs[k + 1 :]}
    pairs = {(a, b): jaccard(sets[a], sets[b]) for a, b in sharing}
    return {pair: j for pair, j in pairs.items() if j >= min_jaccard}


@dataclass
class Score:
    recall: float  # of pairs with J >= recall_at: share with at most one document kept
    precision: float  # of removed documents: share with a twin of J >= precision_at
    true_pairs: int
    removed: int


def score(
    truth: dict[tuple[int, int], float],
    removed: Iterable[int],
    recall_at: float = 0.85,
    precision_at: float = 0.7,
) -> Score:
    """Recall and precision of a set of removed document indices against brute-force truth."""
    removed = set(removed)
    true_pairs = [pair for pair, j in truth.items() if j >= recall_at]
    found = sum(1 for a, b in true_pairs if a in removed or b in removed)
    twins = {d for (a, b), j in truth.items() if j >= precision_at for d in (a, b)}
    right = len(removed & twins)
    return Score(
        recall=found / len(true_pairs) if true_pairs else 1.0,
        precision=right / len(removed) if removed else 1.0,
        true_pairs=len(true_pairs),
        removed=len(removed),
    )
