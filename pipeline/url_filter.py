"""URL filtering: a record whose URL is on a blocklist, or holds a banned word, is rejected before
extraction is paid for (the first per-record stage).

Lists are files in the UT1 format (the Université Toulouse 1 Capitole blacklists FineWeb uses:
one entry per line, `#` comments): an entry without "/" is a domain and blocks it and every
subdomain ("example.com" blocks "www.example.com" and "a.b.example.com"); an entry with "/" is a
URL without its scheme and blocks that URL and everything under it ("example.com/adult" blocks
"https://www.example.com/adult/page.html", not "example.com/adultery"). Hosts and entries are
compared lowercased, without a leading "www.", a port or a trailing dot. Allowlists have the same
format and win over every block rule. Banned words are matched against the URL's words (the URL
split at every character that is not a letter or digit, lowercased), as datatrove's URLFilter does.

Reasons: `url_filter:<list>` where <list> is the blocklist's name (the folder of a UT1 `domains` or
`urls` file, e.g. "adult"; otherwise the file name without its suffix), and
`url_filter:banned_word`; the detail names the matching entry. A record without a URL passes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from pipeline.config import UrlFilterConfig
from pipeline.readers.inputs import gunzipped, open_file
from pipeline.records import Document, Rejection
from pipeline.stage import Stage
from warehouse.errors import MissingFileError

STAGE = "url_filter"
_NON_WORD = re.compile(r"[^a-z0-9]+")


def list_name(path: str) -> str:
    """The name a blocklist file gives its rejects: UT1's `<category>/domains` -> the category."""
    pure = PurePosixPath(path.rstrip("/"))
    base = pure.name.removesuffix(".gz")
    if base in ("domains", "urls") and pure.parent.name:
        return pure.parent.name
    return base.split(".", 1)[0] or base


def _strip_host(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def _entry(line: str) -> tuple[str, str] | None:
    """("domain" | "url", normalised entry) of one list line, or None for blanks and comments."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    if "://" in line:
        line = line.split("://", 1)[1]
    host, slash, path = line.partition("/")
    host = _strip_host(host.split(":", 1)[0])
    if not slash or not path.strip("/"):
        return "domain", host
    return "url", f"{host}/{path.rstrip('/')}"


@dataclass
class UrlList:
    """The domains and URL prefixes of one or more list files."""

    domains: dict[str, str]  # domain -> list name
    urls: dict[str, str]  # host/path -> list name

    @classmethod
    def load(cls, paths: list[str], name_of=list_name) -> "UrlList":
        domains: dict[str, str] = {}
        urls: dict[str, str] = {}
        for path in paths:
            name = name_of(path)
            try:
                with open_file(path) as handle, gunzipped(handle) as stream:
                    for raw in stream:
                        entry = _entry(raw.decode("utf-8", errors="replace"))
                        if entry is not None:
                            (domains if entry[0] == "domain" else urls).setdefault(entry[1], name)
            except FileNotFoundError:
                raise MissingFileError(f"url_filter: list file not found: {path}") from None
        return cls(domains, urls)

    def __len__(self) -> int:
        return len(self.domains) + len(self.urls)

    def find(self, host: str, path: str) -> tuple[str, str] | None:
        """(list name, matching entry) for a normalised host and a URL path, or None."""
        if self.domains:
            labels = host.split(".")
            for i in range(len(labels)):
                name = self.domains.get(".".join(labels[i:]))
                if name is not None:
                    return name, ".".join(labels[i:])
        if self.urls and path:
            prefix = host
            for segment in path.strip("/").split("/"):
                prefix = f"{prefix}/{segment}"
                name = self.urls.get(prefix)
                if name is not None:
                    return name, prefix
        return None


class UrlFilter:
    """The verdict on one URL: None (keep) or (reason, detail)."""

    def __init__(self, cfg: UrlFilterConfig):
        self.block = UrlList.load(list(cfg.blocklists))
        self.allow = UrlList.load(list(cfg.allowlists))
        self.banned_words = frozenset(word.lower() for word in cfg.banned_words)

    @property
    def active(self) -> bool:
        return bool(len(self.block) or self.banned_words)

    def __call__(self, url: str | None) -> tuple[str, str] | None:
        if not url:
            return None
        try:
            parts = urlsplit(url.strip())
            host = _strip_host(parts.hostname or "")
        except ValueError:  # an unparsable URL (bad port, bad IPv6 literal) is judged by its words only
            parts, host = None, ""
        path = parts.path if parts is not None else ""
        if host and self.allow.find(host, path) is not None:
            return None
        if host:
            found = self.block.find(host, path)
            if found is not None:
                return f"{STAGE}:{found[0]}", f"{found[1]} is on blocklist {found[0]}"
        if self.banned_words:
            words = set(_NON_WORD.split(url.lower()))
            banned = sorted(words & self.banned_words)
            if banned:
                return f"{STAGE}:banned_word", f"URL contains banned word {banned[0]!r}"
        return None


class UrlFilterStage(Stage):
    """The url_filter stage (`pipeline.stage` protocol): runs on the record's URL, before extraction."""

    name = STAGE

    def __init__(self, cfg: UrlFilterConfig):
        self.filter = UrlFilter(cfg)

    def __call__(self, doc: Document) -> Document | Rejection:
        verdict = self.filter(doc.record.url)
        if verdict is None:
            return doc
        return self.reject(doc, *verdict)
