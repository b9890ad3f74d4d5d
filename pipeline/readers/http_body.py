"""Turning a stored HTTP payload into the bytes a browser would have rendered.

Pure functions over bytes: no I/O. In: the raw payload of an HTTP response as an archive stored
it, plus its Content-Type / Transfer-Encoding / Content-Encoding header values. Out: the payload
with chunking and compression removed, or an exception saying why that is impossible
(`PayloadTooLarge`, `TruncatedPayload`, `BadContentEncoding`).
"""

from __future__ import annotations

import re
import zlib

import brotli

HTML_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})

# Types that say nothing about the payload: servers send them for anything, so the payload decides.
_UNINFORMATIVE_MEDIA_TYPES = frozenset(
    {"application/octet-stream", "binary/octet-stream", "application/unknown", "unknown/unknown", "*/*"}
)

# The HTML signatures of the WHATWG MIME-sniffing standard (section 7.1), each followed by a
# tag-terminating byte. Browsers render such a payload as HTML whatever the server claimed.
_HTML_SIGNATURES = (
    b"<!doctype html", b"<html", b"<head", b"<script", b"<iframe", b"<h1", b"<div", b"<font",
    b"<table", b"<a", b"<style", b"<title", b"<b", b"<body", b"<br", b"<p", b"<!--",
)
_TAG_TERMINATORS = b" >\t\n\r\x0c"
_UTF8_BOM = b"\xef\xbb\xbf"
_CHUNK_SIZE_LINE = re.compile(rb"[0-9a-fA-F]{1,16}")


class PayloadTooLarge(Exception):
    """The decoded payload is larger than the configured limit."""


class TruncatedPayload(Exception):
    """The payload stops before its own framing (a chunk, a compressed stream) says it ends."""


class BadContentEncoding(Exception):
    """The payload cannot be decoded with the content-encoding its headers declare."""


def parse_content_type(value: str | None) -> tuple[str | None, str | None]:
    """`text/html; charset="UTF-8"` -> ("text/html", "UTF-8"); missing parts are None."""
    if not value:
        return None, None
    media_type, *params = value.split(";")
    charset = None
    for param in params:
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = param_value.strip().strip("\"'").strip() or None
    return media_type.strip().lower() or None, charset


def is_html_media_type(media_type: str | None) -> bool:
    return media_type in HTML_MEDIA_TYPES


def is_uninformative_media_type(media_type: str | None) -> bool:
    """True when the declared type cannot be trusted either way and the payload must be sniffed."""
    return not media_type or "/" not in media_type or media_type in _UNINFORMATIVE_MEDIA_TYPES


def looks_like_html(payload: bytes) -> bool:
    """Whether the payload starts the way HTML starts (WHATWG sniffing, after BOM and whitespace)."""
    head = payload[:1024]
    if head.startswith(_UTF8_BOM):
        head = head[len(_UTF8_BOM):]
    head = head.lstrip().lower()
    # The byte after the signature must end the tag; an empty slice (payload ends there) passes too.
    return any(
        head.startswith(signature) and head[len(signature):len(signature) + 1] in _TAG_TERMINATORS
        for signature in _HTML_SIGNATURES
    )


def dechunk(payload: bytes) -> bytes | None:
    """Remove chunked transfer-encoding; None when the payload is not chunked at all.

    Many crawlers store the body already de-chunked but keep the `Transfer-Encoding: chunked`
    header, so a payload whose first line is not a chunk size is taken as already de-chunked.
    A payload that ends at a chunk boundary without the final zero-size chunk is accepted (the
    content is whole); one that ends inside a chunk raises `TruncatedPayload`.
    """
    pieces: list[bytes] = []
    pos = 0
    while pos < len(payload):
        line_end = payload.find(b"\n", pos)
        if line_end < 0:
            line_end = len(payload)
        size_text = payload[pos:line_end].split(b";", 1)[0].strip()
        if not _CHUNK_SIZE_LINE.fullmatch(size_text):
            if not pieces:
                return None
            if not payload[pos:].strip():
                break
            raise BadContentEncoding(f"malformed chunked transfer-encoding at byte {pos}")
        size = int(size_text, 16)
        if size == 0:
            break
        start = line_end + 1
        if start + size > len(payload):
            raise TruncatedPayload(f"chunk of {size} bytes at byte {pos} runs past the end of the payload")
        pieces.append(payload[start:start + size])
        pos = start + size
        if payload.startswith(b"\r\n", pos):
            pos += 2
        elif payload.startswith(b"\n", pos):
            pos += 1
    return b"".join(pieces)


def _inflate(payload: bytes, wbits: int, limit: int) -> bytes:
    decompressor = zlib.decompressobj(wbits)
    out = decompressor.decompress(payload, limit + 1)
    if len(out) > limit:
        raise PayloadTooLarge(f"decompresses to more than {limit} bytes")
    if not decompressor.eof:
        raise TruncatedPayload("compressed stream ends early")
    return out


def _unbrotli(payload: bytes, limit: int) -> bytes:
    decompressor = brotli.Decompressor()
    out = decompressor.process(payload, output_buffer_limit=limit + 1)
    if len(out) > limit:
        raise PayloadTooLarge(f"decompresses to more than {limit} bytes")
    if not decompressor.is_finished():
        raise TruncatedPayload("brotli stream ends early")
    return out


def decode_content(payload: bytes, coding: str, limit: int) -> bytes:
    """Undo one content-coding (gzip, deflate, br, identity), never producing more than `limit` bytes."""
    coding = coding.strip().lower()
    try:
        if coding in ("", "identity", "none"):
            return payload
        if coding in ("gzip", "x-gzip"):
            return _inflate(payload, zlib.MAX_WBITS | 16, limit)
        if coding == "deflate":
            # RFC 9110 deflate is zlib-wrapped, but many servers send raw deflate; browsers accept both.
            try:
                return _inflate(payload, zlib.MAX_WBITS, limit)
            except zlib.error:
                return _inflate(payload, -zlib.MAX_WBITS, limit)
        if coding == "br":
            return _unbrotli(payload, limit)
    except (zlib.error, brotli.error) as exc:
        raise BadContentEncoding(f"{coding}: {exc}") from None
    raise BadContentEncoding(f"unsupported content-encoding {coding!r}")


def decode_http_payload(
    payload: bytes, transfer_encoding: str | None, content_encoding: str | None, limit: int
) -> bytes:
    """The payload with transfer- and content-encodings removed, at most `limit` bytes.

    When the declared content-encoding fails but the stored payload is already plain HTML, the
    header is taken to be stale (crawlers that decompress on capture often keep it) and the
    payload is returned as it is.
    """
    if transfer_encoding and "chunked" in transfer_encoding.lower():
        dechunked = dechunk(payload)
        if dechunked is not None:
            payload = dechunked
    if not content_encoding:
        return payload
    decoded = payload
    try:
        # Codings are listed in the order they were applied, so they are undone last to first.
        for coding in reversed(content_encoding.split(",")):
            decoded = decode_content(decoded, coding, limit)
    except (BadContentEncoding, TruncatedPayload):
        if looks_like_html(payload):
            return payload
        raise
    return decoded
