"""HTML files, JSONL, plain text and Parquet -> RawRecord or Rejection.

In: an input unit of format "html", "jsonl", "text" or "parquet" (each file may be gzipped,
whatever its name says; Parquet carries its own compression). Out, in file order:
- html: one RawRecord(kind="html") per file, `source` = that file, offset 0;
- jsonl: one item per non-blank line, offset = 0-based line number; `text` (cfg.text_column)
  required, `id` / `url` (cfg.id_column / cfg.url_column) optional;
- text: the whole file as one RawRecord(kind="text");
- parquet: one item per row, offset = row index, read batch by batch.
A file that fails part-way ends in one `read_error` Rejection; it never raises.

No record is ever held in memory beyond `cfg.max_record_bytes` (decompressed): a text file or a
JSONL line over it is streamed past and rejected as `too_large`, so a 1 GiB line or a gzip bomb
costs time, never memory. Text fields that cannot be stored as UTF-8 (a JSONL `\ud800` escape,
a lone surrogate) reject their record as `invalid_unicode`.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import IO, Any

import charset_normalizer
import pyarrow.parquet as pq

from pipeline.config import ReadConfig
from pipeline.readers.inputs import InputUnit, gunzipped, open_file, read_error
from pipeline.records import RawRecord, Rejection

PARQUET_BATCH_ROWS = 1024
_SKIP_CHUNK = 1 << 20  # how much of an over-long line is read at a time while skipping it
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def read_html_files(unit: InputUnit, cfg: ReadConfig) -> Iterator[RawRecord | Rejection]:
    """One HTML RawRecord per file of the unit; too large or unreadable files become Rejections."""
    limit = cfg.max_record_bytes
    for path in unit.paths:
        try:
            with open_file(path) as handle, gunzipped(handle) as stream:
                body = stream.read(limit + 1)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is its read_error
            yield read_error(path, 0, path, exc)
            continue
        if len(body) > limit:
            yield Rejection(source=path, source_offset=0, stage="read", reason="too_large",
                            detail=f"more than {limit} bytes")
        else:
            yield RawRecord(source=path, source_offset=0, kind="html", body=body)


def read_hidden(unit: InputUnit, cfg: ReadConfig) -> Iterator[Rejection]:
    """A dot-prefixed file found in a folder: one `hidden_file` rejection, never read."""
    yield Rejection(source=unit.key, source_offset=0, stage="read", reason="hidden_file",
                    detail=f"{unit.paths[0]}: a dot-prefixed name is tool litter (macOS ._ files, editor "
                           "copies), not read; name the file itself to build it")


def read_jsonl(unit: InputUnit, cfg: ReadConfig) -> Iterator[RawRecord | Rejection]:
    """One item per non-blank line of the unit's JSONL file."""
    path, source = unit.paths[0], unit.key
    try:
        handle = open_file(path)
    except Exception as exc:  # noqa: BLE001
        yield read_error(source, 0, path, exc)
        return
    line_number = -1
    with handle:
        try:
            with gunzipped(handle) as stream:
                for line_number, line, length in capped_lines(stream, cfg.max_record_bytes):
                    if line is None:
                        yield too_large(source, line_number, f"line {line_number + 1} of {path}: {length} bytes",
                                        cfg.max_record_bytes)
                    elif line.strip():
                        yield jsonl_line_item(line, source, line_number, cfg)
        except Exception as exc:  # noqa: BLE001 - e.g. a gzip stream cut short
            yield read_error(source, line_number + 1, path, exc)


def capped_lines(stream: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(0-based line number, line, length in bytes) for each line; the line is None when it is longer
    than `limit`, and then it was read past in chunks, never held whole."""
    for line_number in itertools.count():
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith(b"\n"):
            yield line_number, line, len(line)
            continue
        length = len(line)
        while line and not line.endswith(b"\n"):
            line = stream.readline(_SKIP_CHUNK)
            length += len(line)
        yield line_number, None, length


def too_large(source: str, offset: int, what: str, limit: int) -> Rejection:
    return Rejection(source=source, source_offset=offset, stage="read", reason="too_large",
                     detail=f"{what} (limit: read.max_record_bytes = {limit})")


def jsonl_line_item(line: bytes, source: str, line_number: int, cfg: ReadConfig) -> RawRecord | Rejection:
    """A JSONL line -> RawRecord(kind="text"), or a malformed_json / malformed_record Rejection."""
    try:
        obj = json.loads(line)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both
        return Rejection(source=source, source_offset=line_number, stage="read", reason="malformed_json",
                         detail=str(exc), excerpt=Rejection.excerpt_of(line))
    if not isinstance(obj, dict):
        return Rejection(source=source, source_offset=line_number, stage="read", reason="malformed_record",
                         detail=f"line is a JSON {type(obj).__name__}, not an object", excerpt=Rejection.excerpt_of(line))
    # Only a `\uD800`-`\uDFFF` escape can put a surrogate into a string json.loads returns; a lone
    # one cannot be written as UTF-8 and would fail the whole input's commit.
    if _SURROGATE_ESCAPE.search(line):
        for column in (cfg.text_column, cfg.id_column, cfg.url_column):
            where = _lone_surrogate(obj.get(column))
            if where is not None:
                return Rejection(source=source, source_offset=line_number, stage="read", reason="invalid_unicode",
                                 detail=f"line {line_number + 1}: field {column!r} holds a lone surrogate {where}",
                                 excerpt=Rejection.excerpt_of(line))
    return row_item(obj, source, line_number, cfg)


def _lone_surrogate(value: object) -> str | None:
    """Where a string holds a code point UTF-8 cannot encode ("U+D800 at character 2"), else None."""
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"U+{ord(value[exc.start]):04X} at character {exc.start}"
    return None


def row_item(row: dict[str, Any], source: str, offset: int, cfg: ReadConfig) -> RawRecord | Rejection:
    """A record of a tabular input (JSONL object, Parquet or dataset row) -> RawRecord or Rejection."""
    own_id = row.get(cfg.id_column)
    own_id = None if own_id is None else str(own_id)
    url = row.get(cfg.url_column)
    url = url if isinstance(url, str) else None
    text = row.get(cfg.text_column)
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not isinstance(text, str):
        found = "missing" if text is None else f"a {type(text).__name__}"
        return Rejection(source=source, source_offset=offset, stage="read", reason="malformed_record",
                         detail=f"field {cfg.text_column!r} is {found}, not a string", url=url, own_id=own_id)
    if len(text) > cfg.max_record_bytes // 4 and len(text.encode("utf-8")) > cfg.max_record_bytes:
        rejection = too_large(source, offset, f"field {cfg.text_column!r}: {len(text)} characters", cfg.max_record_bytes)
        rejection.url, rejection.own_id = url, own_id
        return rejection
    return RawRecord(source=source, source_offset=offset, kind="text", body=text, url=url, own_id=own_id)


def read_text(unit: InputUnit, cfg: ReadConfig) -> Iterator[RawRecord | Rejection]:
    """The unit's text file as one RawRecord(kind="text"), or `too_large` past cfg.max_record_bytes."""
    path, source = unit.paths[0], unit.key
    limit = cfg.max_record_bytes
    try:
        with open_file(path) as handle, gunzipped(handle) as stream:
            data = stream.read(limit + 1)
    except Exception as exc:  # noqa: BLE001
        yield read_error(source, 0, path, exc)
        return
    if len(data) > limit:
        yield too_large(source, 0, f"{path}: more than {limit} bytes", limit)
        return
    text = decode_text(data)
    if text is None:
        yield Rejection(source=source, source_offset=0, stage="read", reason="undecodable",
                        detail="neither UTF-8 nor any encoding charset_normalizer recognises")
    else:
        yield RawRecord(source=source, source_offset=0, kind="text", body=text)


def decode_text(data: bytes) -> str | None:
    """UTF-8 (BOM dropped) when valid, else the encoding charset_normalizer finds; None if none fits."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        best = charset_normalizer.from_bytes(data).best()
        return None if best is None else str(best)


def read_parquet(unit: InputUnit, cfg: ReadConfig) -> Iterator[RawRecord | Rejection]:
    """One item per row of the unit's Parquet file, read `PARQUET_BATCH_ROWS` rows at a time."""
    path, source = unit.paths[0], unit.key
    row_index = 0
    try:
        with open_file(path) as handle:
            parquet = pq.ParquetFile(handle)
            names = parquet.schema_arrow.names
            if cfg.text_column not in names:
                yield Rejection(source=source, source_offset=0, stage="read", reason="read_error",
                                detail=f"{path}: no column {cfg.text_column!r} (columns: {', '.join(names)})")
                return
            wanted = [c for c in dict.fromkeys((cfg.text_column, cfg.id_column, cfg.url_column)) if c in names]
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
                for row in batch.to_pylist():
                    yield row_item(row, source, row_index, cfg)
                    row_index += 1
    except Exception as exc:  # noqa: BLE001
        yield read_error(source, row_index, path, exc)
