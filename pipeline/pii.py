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
  public ones (`ipaddress`' is_global), so 127.0.0.1 or 192.168.0.1 stay.

The counts per document are the signals `q_pii_emails` and `q_pii_ips`. Only `text` changes: the
`url` column is the record's URL and is never touched. Texts without "@" skip the e-mail search;
the IP search is one compiled pattern over the text.
"""

from __future__ import annotations

import ipaddress
import re

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
_IP = re.compile(
    r"(?<![\w.])(?P<v4>(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))(?![\w]|\.[0-9])"
    r"|(?<![\w:.])(?P<v6>(?:[0-9A-Fa-f]{1,4}:){1,7}(?::|(?::[0-9A-Fa-f]{1,4}){1,7}|[0-9A-Fa-f]{1,4})|::(?:[0-9A-Fa-f]{1,4}:){0,6}[0-9A-Fa-f]{1,4})(?![\w:])"
)


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
        pieces: list[str] = []
        done = 0  # text[:done] is already in pieces
        count = 0
        at = text.find("@")
        while at != -1:
            start = at
            while start > done and text[start - 1] in _LOCAL_CHARS:
                start -= 1
            while start < at and text[start] == ".":  # a local part neither starts nor ends with "."
                start += 1
            domain = _DOMAIN.match(text, at + 1)
            if start < at and text[at - 1] != "." and domain is not None and not self._image_name(domain.group()):
                pieces += [text[done:start], replacements[count % len(replacements)]]
                count += 1
                done = domain.end()
                at = text.find("@", done)
            else:
                at = text.find("@", at + 1)
        if not count:
            return text, 0
        pieces.append(text[done:])
        return "".join(pieces), count

    @staticmethod
    def _image_name(domain: str) -> bool:
        return domain.rsplit(".", 1)[-1].lower() in _NOT_TLDS

    def _ips(self, text: str) -> tuple[str, int]:
        count = 0
        v4_replacements, v6_replacements = self.cfg.ip_replacement, self.cfg.ipv6_replacement
        public_only = self.cfg.only_public_ips

        def replace(match: re.Match) -> str:
            nonlocal count
            found = match.group()
            try:
                address = ipaddress.ip_address(found)
            except ValueError:  # "1::2::3" and the like: not an address
                return found
            if public_only and not address.is_global:
                return found
            replacements = v4_replacements if address.version == 4 else v6_replacements
            count += 1
            return replacements[(count - 1) % len(replacements)]

        return _IP.sub(replace, text), count


class PiiStage(Stage):
    """The pii stage (`pipeline.stage` protocol): redacts the text, counts what it replaced."""

    name = STAGE

    def __init__(self, cfg: PiiConfig):
        self.redactor = PiiRedactor(cfg)

    def __call__(self, doc: Document) -> Document | Rejection:
        doc.text, emails, ips = self.redactor.redact(doc.text)
        doc.signals = {**doc.signals, "q_pii_emails": float(emails), "q_pii_ips": float(ips)}
        return doc
