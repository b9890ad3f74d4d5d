"""What flows between pipeline stages: a raw record read from an input, the document the per-record
stages fill in (`pipeline.stage`), and a rejection.

Every record a reader yields ends in exactly one place: a document row in `docs`, or a
`Rejection` in `rejects`. Stages never drop a record silently: they return a `Rejection`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from warehouse.schema import EXCERPT_CHARS


def document_id(source: str, locator: int | str) -> str:
    """Stable id of a record: the same (input URI, offset or line) gives the same id on every run."""
    return hashlib.blake2b(f"{source}\x00{locator}".encode(), digest_size=12).hexdigest()


@dataclass(slots=True)
class RawRecord:
    """One record read from an input file, before extraction.

    kind "html": `body` is the HTTP payload (transfer- and content-encodings already removed), bytes
    in an unknown charset; `http_charset` is the charset the HTTP header claimed, if any.
    kind "text": `body` is already plain text (WET conversion, JSONL, .txt, Parquet, HF datasets).
    """

    source: str
    source_offset: int
    kind: Literal["html", "text"]
    body: bytes | str
    url: str | None = None
    fetched_at: datetime | None = None
    http_charset: str | None = None
    title: str | None = None
    own_id: str | None = None  # an id the input itself gave the record (JSONL `id`): kept as-is

    @property
    def id(self) -> str:
        return self.own_id if self.own_id is not None else document_id(self.source, self.source_offset)


@dataclass(slots=True)
class Document:
    """A record on its way through the per-record stages; each stage fills its fields.

    extract sets `text` (None until then), `title` and `published_at`; langid `lang` and
    `lang_score`; quality the `q_*` `signals` and may rewrite `text` (C4 drops lines); classifier
    `quality_score`.
    """

    record: RawRecord
    text: str | None = None
    title: str | None = None
    published_at: datetime | None = None
    lang: str | None = None
    lang_score: float | None = None
    signals: dict[str, float | None] = field(default_factory=dict)
    quality_score: float | None = None  # the classifier stage's p(positive); None without a classifier


@dataclass(slots=True)
class Rejection:
    """A record that will not become a document, and why.

    `stage` is the pipeline stage that rejected it (read, extract, langid, quality, dedup);
    `reason` a short machine-readable code (`not_html`, `http_error`, `exact_duplicate`,
    `gopher_quality:min_doc_words`, ...); `detail` free text for a person.
    """

    source: str
    source_offset: int
    stage: str
    reason: str
    detail: str = ""
    url: str | None = None
    excerpt: str = ""
    own_id: str | None = None

    @property
    def id(self) -> str:
        return self.own_id if self.own_id is not None else document_id(self.source, self.source_offset)

    @classmethod
    def of(cls, record: RawRecord, stage: str, reason: str, detail: str = "", excerpt: bytes | str | None = None) -> "Rejection":
        """The rejection of `record` at `stage`; the excerpt shows `excerpt` (default: the record's body)."""
        return cls(
            source=record.source,
            source_offset=record.source_offset,
            stage=stage,
            reason=reason,
            detail=detail,
            url=record.url,
            excerpt=cls.excerpt_of(record.body if excerpt is None else excerpt),
            own_id=record.own_id,
        )

    @staticmethod
    def excerpt_of(body: bytes | str | None) -> str:
        if body is None:
            return ""
        if isinstance(body, bytes):
            body = body[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
        return body[:EXCERPT_CHARS]


class InputUnavailable(Exception):
    """An input could not be read for a reason outside its data (a disk or network error, a file
    that vanished): the build leaves it uncommitted, so the next build reads it again."""


def is_environmental(exc: BaseException) -> bool:
    """Whether an exception says nothing about the data: a failed system call (an OSError with an
    errno: EIO, ENOENT, EACCES, a reset connection), a timeout, memory. gzip's BadGzipFile and
    pyarrow's corrupt-file errors are OSErrors without errno: verdicts about the file."""
    if isinstance(exc, InputUnavailable | MemoryError | TimeoutError | ConnectionError):
        return True
    return isinstance(exc, OSError) and exc.errno is not None
