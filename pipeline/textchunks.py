"""Long texts cut at line breaks into pieces of about one size.

The quality classifier trains on such pieces (a 1 MB book and a 2 kB page would otherwise weigh
the same), and an ablation splits them between training and validation (a small build has too few
documents to split by document). The pieces of a text depend on the text alone.
"""

from __future__ import annotations

from collections.abc import Iterator


def line_chunks(text: str, size: int) -> Iterator[str]:
    """Consecutive pieces of `text`, each ending after the first line break at or past `size`
    characters (the last piece may be shorter; a single longer line stays whole). Joined they give
    `text` back exactly."""
    start = 0
    while start < len(text):
        cut = text.find("\n", start + size - 1)
        end = len(text) if cut < 0 else cut + 1
        yield text[start:end]
        start = end
