"""WARC, ARC and WET files -> one RawRecord or Rejection per document record.

In: an input unit of format "warc" (gzipped per record, whole-file gzipped, or plain).
Out, in file order: for each `response` (ARC records count as responses) an HTML RawRecord or a
Rejection (http_status, not_html, too_large, truncated_record, bad_content_encoding); for each
`revisit` an `exact_duplicate` Rejection; for each WET `conversion` a text RawRecord. Other record
types (request, metadata, warcinfo, resource) are not documents and yield nothing.

A file that fails part-way never raises: what was read stays, and a `read_error` Rejection stands at
the offset where reading stopped. Corrupt compressed data counts as a failure (warcio itself would
print it and read on as if the file had ended). Reading then resumes at the next record the file
still holds (the next gzip member that starts a WARC or ARC record, or the next `WARC/1.x` line of
an uncompressed file), so one corrupt record costs that record, not the rest of a multi-gigabyte
crawl file; the error's detail says where reading resumed. A file gzipped as a whole cannot be re-entered mid-stream and
ends at its first failure. `source_offset` is the record's byte offset in the file (for per-record
gzip, the offset of its gzip member), so (source, source_offset) is unique.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Generator, Iterator
from datetime import UTC, datetime
from typing import IO

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import DecompressingBufferedReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord

from pipeline.config import ReadConfig
from pipeline.pins import internals_usable
from pipeline.readers.http_body import (
    BadContentEncoding,
    PayloadTooLarge,
    TruncatedPayload,
    decode_http_payload,
    is_html_media_type,
    is_uninformative_media_type,
    looks_like_html,
    parse_content_type,
)
from pipeline.readers.inputs import GZIP_MAGIC, InputUnit, open_file, read_error
from pipeline.records import RawRecord, Rejection

DOCUMENT_RECORD_TYPES = frozenset({"response", "revisit", "conversion"})
# The strict reader below overrides warcio internals; on another warcio, its public iterator reads
# (a gzip member that does not inflate then ends the file quietly, as warcio does).
STRICT_READER = internals_usable("warcio", "reading with its public ArchiveIterator, not the strict reader")


class _CorruptGzipData(Exception):
    """A gzip member whose data does not inflate."""


class _StrictDecompressingReader(DecompressingBufferedReader):
    """warcio's reader, except that a gzip member that does not inflate raises.

    Midway through a member warcio prints the zlib error and returns no data, then reads on as if
    the member had ended; at a member's first block it takes the bytes for uncompressed data and
    parses them as records (ARC headers are lenient enough to accept them). Either way the record,
    and every record after it in the file, would vanish without a trace. Where the file is not known
    to be per-record gzip, a first block keeps warcio's handling: inflating it is how warcio tells
    gzip from plain data.
    """

    def __init__(self, *args, members_are_gzip: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.members_are_gzip = members_are_gzip

    def _decompress(self, data: bytes) -> bytes:
        if self.decompressor and data and (self.num_block_read > 0 or self.members_are_gzip):
            try:
                return self.decompressor.decompress(data)
            except Exception as exc:  # noqa: BLE001 - zlib.error and the brotli/deflate variants
                raise _CorruptGzipData(f"corrupt compressed data inside a gzip member: {exc}") from exc
        return super()._decompress(data)


class _StrictArchiveIterator(ArchiveIterator):
    """warcio's iterator, reading through `_StrictDecompressingReader`, and without its stderr dump
    for a record not followed by the blank lines its Content-Length promises: the dump holds the raw
    (often binary) bytes that follow, and a messy crawl prints thousands of them from worker
    processes. Such a record is still read; one that really is short becomes `truncated_record`."""

    INC_RECORD = ""

    def __init__(self, fileobj: IO[bytes], members_are_gzip: bool, **kwargs):
        super().__init__(fileobj, **kwargs)
        self.reader = _StrictDecompressingReader(
            self.fh, block_size=self.reader.block_size, members_are_gzip=members_are_gzip
        )


# WARC 1.1 allows up to nanosecond precision; Python parses at most microseconds.
_EXTRA_FRACTION_DIGITS = re.compile(r"(\.\d{6})\d+")


def read_warc(unit: InputUnit, cfg: ReadConfig) -> Iterator[RawRecord | Rejection]:
    """Every document record of the unit's one archive file, as RawRecord or Rejection."""
    path = unit.paths[0]
    whole_file_gzip = yield from _read_archive_file(path, unit.key, cfg, whole_file_gzip=False)
    if whole_file_gzip:
        yield from _read_archive_file(path, unit.key, cfg, whole_file_gzip=True)


def parse_warc_date(value: str | None) -> datetime | None:
    """WARC-Date (ISO 8601, or a 14-digit ARC timestamp) as UTC; lenient; None when unparsable.

    Real files hold dates without seconds or zone (`2019-08-15T01:02`): zone-less dates are UTC,
    as the WARC standard says every WARC-Date is.
    """
    if not value:
        return None
    text = value.strip()
    try:
        if text.isdigit():
            parsed = datetime.strptime(text[:14].ljust(14, "0"), "%Y%m%d%H%M%S")
        else:
            parsed = datetime.fromisoformat(_EXTRA_FRACTION_DIGITS.sub(r"\1", text))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _read_archive_file(
    path: str, source: str, cfg: ReadConfig, whole_file_gzip: bool
) -> Generator[RawRecord | Rejection, None, bool]:
    """Yield the file's items; return True when it must be read again as one whole-file gzip.

    warcio needs one gzip member per record. A file gzipped as a whole (`gzip x.warc`) fails after
    its first record; it is then read a second time through a streaming gunzip, the first record
    skipped, and its offsets are positions in the decompressed stream.
    """
    try:
        handle = open_file(path)
    except Exception as exc:  # noqa: BLE001 - any failure to open is this file's read_error
        yield read_error(source, 0, path, exc)
        return False
    with handle:
        head = handle.read(len(GZIP_MAGIC))
        # A per-record gzip file whose first gzip header is damaged still names itself .gz; a plain
        # WARC or ARC misnamed .gz starts with text ("WARC/", "filedesc://", a URL).
        gzipped = head == GZIP_MAGIC or (path.endswith(".gz") and not head.decode("latin-1").isprintable())
        handle.seek(0)
        stream: IO[bytes] = gzip.GzipFile(fileobj=handle) if whole_file_gzip else handle
        errors_at: set[int] = set()  # offsets of the read_errors yielded: each key is yielded once
        start: int | None = 0
        while start is not None:
            stream.seek(start)
            # Offsets count from the file's start. A whole-file gzip is read through a gunzipped stream.
            records = (
                _StrictArchiveIterator(stream, members_are_gzip=gzipped and not whole_file_gzip, arc2warc=True)
                if STRICT_READER else ArchiveIterator(stream, arc2warc=True)
            )
            last_offset, current = -1, None
            try:
                for record in records:
                    # The iterator's offset is the record's start before its body is read; asking
                    # get_record_offset() here instead would consume the body first.
                    offset = records.offset
                    last_offset = offset
                    if record.rec_type not in DOCUMENT_RECORD_TYPES or (whole_file_gzip and offset == 0):
                        continue
                    if offset in errors_at:
                        continue  # a read_error already stands for the record at this offset
                    current = offset
                    item = _document_or_rejection(record, source, offset, cfg)
                    current = None
                    yield item
                failure: Exception | None = None
                # warcio stops quietly when the file ends inside a record's HTTP headers; bytes it
                # read that no record accounts for show that the file was cut there.
                if records.offset < records.fh.tell():
                    failure = EOFError(f"file ends inside the record at offset {records.offset}")
            except Exception as exc:  # noqa: BLE001 - a broken record is a read_error, never a crash
                if start == 0 and not whole_file_gzip and last_offset == 0 and _is_whole_file_gzip_error(exc):
                    return True
                failure = exc
            if failure is None:
                return False
            # The record being read when it failed, else where the iterator stood; that offset is
            # stale (or negative) when the failure came while finishing the previous record, and the
            # position just past that record's start is then the best known.
            failed_at = current if current is not None else max(records.offset, last_offset + 1, start)
            # The search for the next record starts just past the last record start warcio read
            # correctly: after corrupt deflate data its own offset can point past the next record.
            # The record that just failed is not tried again.
            start = None if whole_file_gzip else _next_record_start(handle, max(last_offset, start) + 1, gzipped)
            if start is not None and start == failed_at:
                start = _next_record_start(handle, failed_at + 1, gzipped)
            if failed_at not in errors_at:
                errors_at.add(failed_at)
                error = read_error(source, failed_at, path, failure)
                if start is not None:
                    error.detail += f"; reading resumed at the next record, offset {start}"
                yield error
    return False


_SCAN_BLOCK = 1 << 20


def _next_record_start(handle: IO[bytes], after: int, gzipped: bool) -> int | None:
    """Offset of the first record start at or after `after`, or None when the file holds none.

    In a per-record gzip file a record starts a gzip member: the gzip magic and deflate method byte,
    followed by data that inflates to a WARC or ARC record header (the three bytes alone also occur
    inside compressed data). In an uncompressed file a record starts at a `WARC/1.x` line.
    """
    marker = GZIP_MAGIC + b"\x08" if gzipped else b"\nWARC/1."
    # An uncompressed record's line starts after a newline: scan from the byte before `after`.
    position = after if gzipped else after - 1
    while True:
        handle.seek(position)
        # The blocks overlap by the marker's length, so a marker cut by one block's end is found
        # whole in the next; one starting in the overlap is left to the next block.
        block = handle.read(_SCAN_BLOCK + len(marker))
        found = block.find(marker)
        while 0 <= found < _SCAN_BLOCK:
            candidate = position + found + (0 if gzipped else 1)
            if not gzipped or _inflates_to_record_header(handle, candidate):
                return candidate
            found = block.find(marker, found + 1)
        if len(block) <= _SCAN_BLOCK:
            return None
        position += _SCAN_BLOCK


# An ARC record's header line: URL, IP address, 14-digit date, ... ("http://x.org/ 1.2.3.4 20080430204825 text/html 97").
_ARC_HEADER = re.compile(rb"[a-z][a-z0-9+.-]*:\S* \S+ \d{14} ")


def _inflates_to_record_header(handle: IO[bytes], offset: int) -> bool:
    handle.seek(offset)
    try:
        head = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(handle.read(4096), 256)
    except zlib.error:
        return False
    head = head.lstrip(b"\r\n")
    return head.startswith(b"WARC/") or _ARC_HEADER.match(head) is not None


def _is_whole_file_gzip_error(exc: Exception) -> bool:
    return isinstance(exc, ArchiveLoadFailed) and "non-chunked gzip" in str(exc)


def _document_or_rejection(record: ArcWarcRecord, source: str, offset: int, cfg: ReadConfig) -> RawRecord | Rejection:
    url = record.rec_headers.get_header("WARC-Target-URI")

    def reject(reason: str, detail: str, excerpt: bytes | None = None) -> Rejection:
        return Rejection(
            source=source, source_offset=offset, stage="read", reason=reason, detail=detail, url=url,
            excerpt=Rejection.excerpt_of(excerpt),
        )

    if record.rec_type == "revisit":
        return reject("exact_duplicate", _revisit_detail(record))
    fetched_at = parse_warc_date(record.rec_headers.get_header("WARC-Date"))
    if record.rec_type == "conversion":
        payload = _read_payload(record, cfg.max_record_bytes)
        if isinstance(payload, tuple):
            return reject(*payload)
        text = payload.decode("utf-8", errors="replace")
        return RawRecord(source=source, source_offset=offset, kind="text", body=text, url=url, fetched_at=fetched_at)

    http = record.http_headers
    if http is None:
        # No HTTP message: dns: records, ARC records of other schemes, empty or broken responses.
        content_type = record.content_type
        if content_type and content_type.lower().startswith("application/http"):
            return reject("http_status", "no parsable HTTP status line")
    else:
        status = http.get_statuscode()
        if not (status.isdigit() and 200 <= int(status) < 300):
            return reject("http_status", http.statusline.strip() or "empty HTTP status line")
        if status == "206":
            # A byte range of a page is not the page: its extracted text would be a fragment.
            return reject("truncated_record", f"{http.statusline.strip()}: only a byte range was captured")
        content_type = http.get_header("Content-Type")
    media_type, charset = parse_content_type(content_type)
    must_sniff = is_uninformative_media_type(media_type)
    if not must_sniff and not is_html_media_type(media_type):
        return reject("not_html", content_type or "")

    payload = _read_payload(record, cfg.max_record_bytes)
    if isinstance(payload, tuple):
        return reject(*payload)
    try:
        body = decode_http_payload(
            payload,
            http.get_header("Transfer-Encoding") if http else None,
            http.get_header("Content-Encoding") if http else None,
            cfg.max_record_bytes,
        )
    except PayloadTooLarge as exc:
        return reject("too_large", f"{exc} (limit {cfg.max_record_bytes})")
    except TruncatedPayload as exc:
        return reject("truncated_record", str(exc))
    except BadContentEncoding as exc:
        return reject("bad_content_encoding", str(exc))
    if must_sniff and not looks_like_html(body):
        return reject("not_html", f"{content_type or 'no Content-Type'}; payload does not look like HTML", body)
    return RawRecord(
        source=source, source_offset=offset, kind="html", body=body, url=url, fetched_at=fetched_at,
        http_charset=charset,
    )


def _read_payload(record: ArcWarcRecord, limit: int) -> bytes | tuple[str, str]:
    """The record's stored payload (after any HTTP headers), or (reason, detail) why it is unusable.

    Never reads more than `limit` + 1 bytes: a larger payload is left for the iterator to skip.
    """
    if record.length is None:
        return "truncated_record", "record has no Content-Length"
    stored = record.payload_length if record.payload_length >= 0 else record.length
    if stored > limit:
        return "too_large", f"{stored} bytes stored (limit {limit})"
    payload = record.raw_stream.read(limit + 1)
    if len(payload) > limit:
        return "too_large", f"more than {limit} bytes stored"
    missing = getattr(record.raw_stream, "limit", 0)
    if missing > 0:
        return "truncated_record", f"file ends {missing} bytes before the record's Content-Length"
    warc_truncated = record.rec_headers.get_header("WARC-Truncated")
    if warc_truncated:
        return "truncated_record", f"WARC-Truncated: {warc_truncated}"
    http = record.http_headers
    if http is not None and "chunked" not in (http.get_header("Transfer-Encoding") or "").lower():
        declared = http.get_header("Content-Length")
        if declared and declared.strip().isdigit() and len(payload) < int(declared):
            return "truncated_record", f"payload has {len(payload)} of the {int(declared)} bytes its HTTP Content-Length declares"
    return payload


def _revisit_detail(record: ArcWarcRecord) -> str:
    headers = record.rec_headers
    parts = [
        f"{label} {value}"
        for label, value in (
            ("refers to", headers.get_header("WARC-Refers-To-Target-URI")),
            ("captured", headers.get_header("WARC-Refers-To-Date")),
            ("record", headers.get_header("WARC-Refers-To")),
            ("payload digest", headers.get_header("WARC-Payload-Digest")),
        )
        if value
    ]
    return "revisit: " + ("; ".join(parts) if parts else "no reference to the original capture")
