"""Decode an HTML payload of unknown charset to text, trusting each claim only as far as it holds.

Sources are tried in the order a browser trusts them — byte-order mark, HTTP header charset,
`<meta charset>` / `http-equiv` / `<?xml encoding?>` in the first 4 KB, then statistical
detection — but every declared charset must *verify* before it is used, because real pages lie:
servers default to ISO-8859-1 for pages written in UTF-8, templates copy a `<meta>` from another
site, CMSs re-encode without updating the declaration. A declaration loses to the next source when

- the bytes do not decode in it (beyond a 1 % slack for stray bytes and a record cut mid-character),
- the bytes are valid multi-byte UTF-8 and the claim is some other charset (legacy text is valid
  UTF-8 by accident with vanishing probability, so UTF-8 is then the true charset),
- the decoded text reads as mojibake (charset_normalizer's mess ratio: Cyrillic bytes read as
  windows-1252 give "Ïðèâåò"), or
- it claims UTF-16/32 for bytes with no NUL among them (an ASCII-compatible page is not UTF-16).

Labels resolve through the WHATWG Encoding Standard's table (`webencodings`), as browsers resolve
them: latin-1/ISO-8859-1/ascii -> windows-1252, gb2312/gbk -> gb18030, shift_jis -> cp932,
euc-kr -> cp949, big5 -> big5hkscs. `decode_html` never raises; the last resort is UTF-8 with
U+FFFD for the bytes that do not decode.
"""

from __future__ import annotations

import codecs
import re

import cchardet
import webencodings
from charset_normalizer.md import mess_ratio

# Above this charset_normalizer mess ratio a decoding is mojibake. It is charset_normalizer's own
# default cut-off; correct decodings of the chardet test pages score <= 0.02, windows-1252
# misreadings of Cyrillic, Greek, Hebrew, Thai or GBK pages score > 1.
MAX_MESS_RATIO = 0.2
# A declared charset may leave this fraction of the non-ASCII characters undecodable: a UTF-8
# page with one stray windows-1252 byte is still UTF-8; a windows-1252 page is not.
MAX_UNDECODABLE_FRACTION = 0.01
# Mojibake is uniform across a page, so the mess ratio of a long page is judged on its start.
MESS_SAMPLE_CHARS = 20_000
# Where a declaration may stand: the WHATWG prescan reads 1024 bytes; real pages put long
# <script>/<link> blocks first, so read as far as w3lib and trafilatura do.
PRESCAN_BYTES = 4096

_UTF8 = "utf-8"
_WINDOWS_1252 = "cp1252"
_WIDE_UNICODE = frozenset({"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"})
# The WHATWG GBK decoder is the gb18030 decoder (GBK plus the euro sign and four-byte forms).
_PYTHON_CODEC_OVERRIDES = {"gbk": "gb18030"}
# Charsets a detector may name that hardly any web page uses (each well under 0.01 % of sites).
_RARE_ON_THE_WEB = frozenset(
    {"iso8859-3", "iso8859-4", "iso8859-10", "iso8859-13", "iso8859-14", "iso8859-16", "cp1258",
     "mac-roman", "mac-cyrillic"}
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_META_CHARSET = re.compile(
    rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([a-z0-9_:.+-]+)""", re.IGNORECASE
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml\s[^>]*?encoding\s*=\s*["']([a-z0-9_:.+-]+)""", re.IGNORECASE)
# ISO-2022 escape sequences and HZ shifts: 7-bit encodings whose bytes are also valid ASCII.
_SEVEN_BIT_CJK = re.compile(rb"\x1b[$(]|~\{")


def decode_html(body: bytes, http_charset: str | None) -> tuple[str, str]:
    """Decode an HTTP payload to text.

    `body` is the payload with transfer/content encodings removed; `http_charset` the charset the
    Content-Type header named (None when it named none). Returns (text, Python codec name used);
    a byte-order mark is not part of the text.
    """
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom):].decode(codec, errors="replace"), codec

    for codec in declared_codecs(body, http_charset):
        text = _decode_verified(body, codec)
        if text is not None:
            return text, codec

    codec = _sniff_utf16(body)
    if codec is None and not _SEVEN_BIT_CJK.search(body):
        try:
            # Undeclared (or falsely declared) and valid UTF-8: nothing else fits the bytes as well.
            return body.decode(_UTF8), _UTF8
        except UnicodeDecodeError:
            pass
    return _decode_detected(body, codec)


def declared_codecs(body: bytes, http_charset: str | None) -> list[str]:
    """Python codecs the HTTP header, then the document's own declaration claim; no repeats."""
    declared = []
    if http_charset:
        codec = codec_for_label(http_charset.strip().strip("\"'"))
        if codec is not None:
            declared.append(codec)
    head = body[:PRESCAN_BYTES]
    match = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    if match is not None:
        codec = codec_for_label(match.group(1).decode("ascii"))
        # WHATWG: a declaration readable as ASCII cannot mean UTF-16/32, whatever it says.
        if codec in _WIDE_UNICODE:
            codec = _UTF8
        if codec is not None and codec not in declared:
            declared.append(codec)
    return declared


def codec_for_label(label: str) -> str | None:
    """Python codec decoding what browsers decode for a WHATWG charset label; None if unknown."""
    encoding = webencodings.lookup(label)
    if encoding is None or encoding.name in ("replacement", "x-user-defined"):
        return None
    name = encoding.codec_info.name
    return _PYTHON_CODEC_OVERRIDES.get(name, name)


def _decode_detected(body: bytes, sniffed: str | None) -> tuple[str, str]:
    """Decode an undeclared, non-UTF-8 body by statistical detection.

    uchardet (faust-cchardet) guesses. It favours charsets that are rare on the web (ISO-8859-13,
    -16, -10, IBM852, VISCII, ...) for plain Western text, so for such a guess a plausible
    windows-1252 reading, the web's commonest legacy charset and the WHATWG default, wins.
    """
    guess = sniffed
    if guess is None:
        label = cchardet.detect(body).get("encoding") or ""
        if _SEVEN_BIT_CJK.search(body):
            # HZ and ISO-2022-KR/CN, which the WHATWG table maps to "replacement".
            guess = _python_codec(label)
        else:
            guess = codec_for_label(label)
            if guess is None or guess in _RARE_ON_THE_WEB:
                text = _decode_verified(body, _WINDOWS_1252)
                if text is not None:
                    return text, _WINDOWS_1252
                guess = guess or _python_codec(label)
    for codec in (guess, _WINDOWS_1252):
        text = _decode_tolerant(body, codec) if codec is not None else None
        if text is not None:
            return text, codec
    return body.decode(_UTF8, errors="replace"), _UTF8


def _python_codec(label: str) -> str | None:
    """Python's own codec for a label (hz, cp852, ...); None where Python has none (VISCII)."""
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _sniff_utf16(body: bytes) -> str | None:
    """UTF-16 without a byte-order mark: mostly-Latin text has a NUL in every other byte."""
    sample = body[:4096]
    if len(sample) < 4 or sample.count(0) < len(sample) // 4:
        return None
    odd_nuls = sample[1::2].count(0)
    even_nuls = sample[0::2].count(0)
    if odd_nuls > 3 * even_nuls:
        return "utf-16-le"
    if even_nuls > 3 * odd_nuls:
        return "utf-16-be"
    return None


def _decode_verified(body: bytes, codec: str) -> str | None:
    """`body` decoded in the declared `codec` if that gives plausible text, else None."""
    if codec in _WIDE_UNICODE and b"\x00" not in body[:PRESCAN_BYTES]:
        return None
    text = _decode_tolerant(body, codec)
    if text is None or codec == _UTF8 or text.isascii():
        return text
    if codec not in _WIDE_UNICODE and _is_multibyte_utf8(body):
        return None
    # maximum_threshold=1.0: a lower one stops at the first messy block, and judges a whole page
    # by a title in mixed scripts.
    if mess_ratio(text[:MESS_SAMPLE_CHARS], maximum_threshold=1.0) >= MAX_MESS_RATIO:
        return None
    return text


def _decode_tolerant(body: bytes, codec: str) -> str | None:
    """Decode allowing a character cut off at the end and a few stray bytes; None if more fail."""
    try:
        return body.decode(codec)
    except UnicodeDecodeError as err:
        if err.start >= len(body) - 4:
            # A record truncated inside a multi-byte character: drop the partial character.
            try:
                return body[: err.start].decode(codec)
            except UnicodeDecodeError:
                return None
    except LookupError:
        return None
    text = body.decode(codec, errors="replace")
    undecodable = text.count("\ufffd")
    non_ascii = len(text) - len(text.encode("ascii", errors="ignore"))
    return text if undecodable <= MAX_UNDECODABLE_FRACTION * non_ascii else None


def _is_multibyte_utf8(body: bytes) -> bool:
    """True when `body` is valid UTF-8 and not plain ASCII."""
    if body.isascii():
        return False
    try:
        body.decode(_UTF8)
    except UnicodeDecodeError:
        return False
    return True
