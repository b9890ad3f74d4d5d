"""PII redaction: e-mail addresses and IP addresses in a document's text are replaced, as FineWeb
does with datatrove's PIIFormatter (the last per-record stage, after the quality rules judged the
original text).

- E-mail addresses become `email@example.com`, `firstname.lastname@example.org`, ... (the
  replacements are used in turn within a document, so every document gets the same sequence).
  Only text around each "@" is examined: a local part of RFC 5322 atom characters, then a domain
  of dot-separated labels ending in an alphabetic top-level label, or a bracketed IPv4 literal.
  A "TLD" that is an image suffix (`logo@2x.png`) is not an address.
- IPv4 addresses (four dot-separated numbers 0-255, not part of a longer dotted number or word)
  and IPv6 addresses (validated by `ipaddress`) become FineWeb's placeholders; by default only
  public ones (`ipaddress`' is_global; for IPv6 also in 2000::/3, the global unicast space), so
  127.0.0.1, 192.168.0.1 or fe80::1 stay.

The counts per document are the signals `q_pii_emails` and `q_pii_ips`. Only `text` changes: the
`url` column is the record's URL and is never touched. Texts without "@" skip the e-mail search;
IPv4 candidates come from one compiled pattern that starts with a digit (so
the regex engine skips to digits), IPv6 candidates from the text around each ":"; `ipaddress`
then decides.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from pipeline.config import PiiConfig
from pipeline.records import Document, Rejection
from pipeline.stage import Stage

STAGE = "pii"
COLUMNS = ["q_pii_emails", "q_pii_ips"]

_LOCAL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~-.")
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?![A-Za-z0-9-])"
    r"|\[(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\]"
)
_NOT_TLDS = frozenset({"png", "jpg", "jpeg", "gif", "webp", "svg", "bmp", "ico", "avif", "tif", "tiff"})
# Candidates only; the digits' and letters' boundaries and the address itself are checked after
# (a pattern with look-behinds first is 5x slower to search than one starting with a digit).
_IPV4_CANDIDATE = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
_HEX_OR_COLON = frozenset("0123456789abcdefABCDEF:")


def _word_char(text: str, i: int) -> bool:
    return 0 <= i < len(text) and (text[i].isalnum() or text[i] == "_")


# Only 2000::/3 is handed out as global unicast; `is_global` alone takes "a::b" for public.
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and (address.version == 4 or address in _GLOBAL_UNICAST)


def _clear_before(text: str, start: int) -> bool:
    """Nothing at `start - 1` that would make the address part of a word or a longer dotted number."""
    return start == 0 or not (_word_char(text, start - 1) or text[start - 1] == ".")


def _ipv4_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each dotted quad not inside a longer dotted number or a word."""
    for match in _IPV4_CANDIDATE.finditer(text):
        start, end = match.span()
        if not _clear_before(text, start):
            continue
        if _word_char(text, end) or (text[end : end + 1] == "." and _word_char(text, end + 1)):
            continue
        yield start, end


def _ipv6_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each run of hex digits and colons with two colons or more, around a colon."""
    colon = text.find(":")
    while colon != -1:
        start = colon
        while start > 0 and text[start - 1] in _HEX_OR_COLON:
            start -= 1
        end = colon + 1
        while end < len(text) and text[end] in _HEX_OR_COLON:
            end += 1
        if text[end - 1] == ":" and text[end - 2 : end] != "::":  # "... 2001:db8::1: next"
            end -= 1
        if text.count(":", start, end) >= 2 and _clear_before(text, start) and not _word_char(text, end):
            yield start, end
        colon = text.find(":", max(end, colon + 1))


class PiiRedactor:
    """`redact(text)` -> (text, e-mails replaced, IPs replaced)."""

    def __init__(self, cfg: PiiConfig):
        self.cfg = cfg

    def redact(self, text: str) -> tuple[str, int, int]:
        emails = ips = 0
        if self.cfg.emails and "@" in text:
            text, emails = self._emails(text)
        if self.cfg.ips:
            text, ips = self._ips(text)
        return text, emails, ips

    def _emails(self, text: str) -> tuple[str, int]:
        replacements = self.cfg.email_replacement
        found: list[tuple[int, int, str]] = []
        done = 0  # the end of the last address found: the next local part starts after it
        at = text.find("@")
        while at != -1:
            start = at
            while start > done and text[start - 1] in _LOCAL_CHARS:
                start -= 1
            while start < at and text[start] == ".":  # a local part neither starts nor ends with "."
                start += 1
            domain = _DOMAIN.match(text, at + 1)
            if start < at and text[at - 1] != "." and domain is not None and not self._image_name(domain.group()):
                found.append((start, domain.end(), replacements[len(found) % len(replacements)]))
                done = domain.end()
                at = text.find("@", done)
            else:
                at = text.find("@", at + 1)
        return _splice(text, found), len(found)

    @staticmethod
    def _image_name(domain: str) -> bool:
        return domain.rsplit(".", 1)[-1].lower() in _NOT_TLDS

    def _ips(self, text: str) -> tuple[str, int]:
        spans = list(_ipv4_spans(text))
        if ":" in text:
            spans += _ipv6_spans(text)
        found: list[tuple[int, int, str]] = []
        for start, end in sorted(spans):
            if found and start < found[-1][1]:
                continue
            try:
                address = ipaddress.ip_address(text[start:end])
            except ValueError:  # "12:30:45", "999.1.2.3": not an address
                continue
            if self.cfg.only_public_ips and not _public(address):
                continue
            replacements = self.cfg.ip_replacement if address.version == 4 else self.cfg.ipv6_replacement
            found.append((start, end, replacements[len(found) % len(replacements)]))
        return _splice(text, found), len(found)


def _splice(text: str, found: list[tuple[int, int, str]]) -> str:
    """The text with each (start, end) span, in order and not overlapping, replaced."""
    if not found:
        return text
    pieces: list[str] = []
    done = 0
    for start, end, replacement in found:
        pieces += [text[done:start], replacement]
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


class PiiStage(Stage):
    """The pii stage (`pipeline.stage` protocol): redacts the text, counts what it replaced."""

    name = STAGE

    def __init__(self, cfg: PiiConfig):
        self.redactor = PiiRedactor(cfg)

    def __call__(self, doc: Document) -> Document | Rejection:
        doc.text, emails, ips = self.redactor.redact(doc.text)
        doc.signals = {**doc.signals, "q_pii_emails": float(emails), "q_pii_ips": float(ips)}
        return doc
