"""One build of one file of each hostile kind: bombs, huge lines, surrogates, NULs, lying lengths,
deep nesting, binary, wrong-schema Parquet. The build must finish, stay under 2 GB of memory
(PSS of the whole process tree, sampled), and account for every record: each file committed, each record
a document or a reject with its reason. Files are generated here; none is committed to the repo."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from bench.common import peak_tree_pss
from warehouse.layout import DatasetPaths
from warehouse.read import scan

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20
PEAK_LIMIT = 2 << 30
# Prose every filter keeps (A Tale of Two Cities, public domain), so kept documents are checked too.
PROSE = (REPO / "tests" / "fixtures" / "prose" / "tale_of_two_cities_opening.txt").read_text()


def gzip_stream(path: Path, parts) -> None:
    """A gzip file of the byte strings `parts` yields, compressed as they come (never all in memory)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    with open(path, "wb") as out:
        for part in parts:
            out.write(compressor.compress(part))
        out.write(compressor.flush())


def zeros(total: int, chunk: int = 4 * MiB):
    for start in range(0, total, chunk):
        yield b"a" * min(chunk, total - start)


class _Zeros(io.RawIOBase):
    """A readable stream of `size` bytes that never holds them all."""

    def __init__(self, size: int):
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = b"x" * n
        self.left -= n
        return n


def warc(path: Path, records: list[tuple[list[tuple[str, str]], object, int | None]]) -> Path:
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for number, (headers, payload, length) in enumerate(records):
            stream = io.BufferedReader(payload) if isinstance(payload, io.RawIOBase) else io.BytesIO(payload)
            record = writer.create_warc_record(
                f"http://example.org/{number}", "response", payload=stream, length=length,
                http_headers=StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1"),
            )
            writer.write_record(record)
    return path


def hostile_files(folder: Path) -> dict[str, set[str]]:
    """Write the files; return, per file, reasons that must be among its rejects."""
    html = [("Content-Type", "text/html; charset=utf-8")]
    page = f"<html><body><article><p>{PROSE}</p></article></body></html>".encode()
    expect: dict[str, set[str]] = {}

    bomb = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    payload = b"".join(bomb.compress(part) for part in zeros(512 * MiB)) + bomb.flush()
    warc(folder / "content_encoding_bomb.warc.gz",
         [(html, page, None), (html + [("Content-Encoding", "gzip")], payload, None), (html, page, None)])
    expect["content_encoding_bomb.warc.gz"] = {"too_large"}
    warc(folder / "stored_bomb.warc.gz", [(html, page, None), (html, _Zeros(256 * MiB), None), (html, page, None)])
    expect["stored_bomb.warc.gz"] = {"too_large"}

    head = b"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: http://example.org/lie\r\n"
    http = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n" + page
    lying = head + f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http) + 5000}\r\n\r\n".encode() + http
    (folder / "lying_length.warc").write_bytes(lying)
    expect["lying_length.warc"] = set()

    gzip_stream(folder / "huge_line.jsonl.gz", [json.dumps({"text": PROSE}).encode() + b"\n", b'{"text": "',
                                                *zeros(300 * MiB), b'"}\n', json.dumps({"text": PROSE + "!"}).encode() + b"\n"])
    expect["huge_line.jsonl.gz"] = {"too_large"}
    gzip_stream(folder / "huge.txt.gz", zeros(1024 * MiB))
    expect["huge.txt.gz"] = {"too_large"}

    (folder / "surrogates.jsonl").write_text('{"text": "a \\ud800 b"}\n{"text": "c", "url": "http://x/\\udfff"}\n'
                                              + json.dumps({"text": PROSE + " surrogate file"}) + "\n")
    expect["surrogates.jsonl"] = {"invalid_unicode"}
    (folder / "nuls.jsonl").write_text(json.dumps({"text": "The NUL file.\n" + PROSE.replace("age of wisdom", "age\x00 of\x00 wisdom")}) + "\n")
    expect["nuls.jsonl"] = set()
    (folder / "deep.html").write_text("<html><body>" + "<div>" * 100_000 + PROSE + "</div>" * 100_000 + "</body></html>")
    expect["deep.html"] = set()

    noise = os.urandom(MiB)
    for name in ("binary.warc.gz", "binary.html", "binary.txt", "binary.parquet", "binary.jsonl.gz"):
        (folder / name).write_bytes(noise)
        expect[name] = set()
    expect["binary.parquet"] = {"read_error"}
    pq.write_table(pa.table({"body": ["no text column"]}), folder / "no_text_column.parquet")
    expect["no_text_column.parquet"] = {"read_error"}
    pq.write_table(pa.table({"text": pa.array([1, 2, 3], pa.int64())}), folder / "int_text.parquet")
    expect["int_text.parquet"] = {"malformed_record"}
    return expect


def test_one_build_of_every_hostile_kind_finishes_in_bounded_memory_and_accounts_for_every_record(tmp_path):
    folder = tmp_path / "hostile"
    folder.mkdir()
    expect = hostile_files(folder)
    ds = DatasetPaths(str(tmp_path / "wh"), "d")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PREFECT_HOME": str(tmp_path / "prefect")}
    build = subprocess.Popen([sys.executable, "-m", "flows.cli", "build", str(folder), "--warehouse", ds.root,
                              "--dataset", ds.name, "--workers", "2"], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = peak_tree_pss(build, interval=0.1)
    stderr = build.stderr.read()
    print(f"peak memory of the build's process tree (PSS, summed): {peak / MiB:.0f} MiB")
    assert build.returncode == 0, stderr[-3000:]
    assert peak < PEAK_LIMIT, f"peak {peak / MiB:.0f} MiB"

    shards = {Path(r["source"]).name: r for r in scan(ds, "shards").collect().iter_rows(named=True)}
    assert set(shards) == set(expect)  # every file committed, none lost
    rows = pl.concat([scan(ds).select("source", pl.lit(None, pl.String).alias("reason")),
                      scan(ds, "rejects").select("source", "reason")]).collect()
    for name, reasons in expect.items():
        mine = rows.filter(pl.col("source").str.ends_with("/" + name))
        assert mine.height == shards[name]["records"] > 0, name
        assert reasons <= set(mine["reason"].drop_nulls()), (name, mine["reason"].to_list())
    huge = rows.filter(pl.col("source").str.ends_with("/huge_line.jsonl.gz"))
    assert huge.height == 3  # the lines around the huge one are kept (or judged on their own)
    texts = scan(ds).select("source", "text").collect()
    assert all("\x00" not in text for text in texts["text"])
    # Every file carries the same prose, so near dedup keeps one copy, and which one depends on ids
    # that hash the temporary path: the NUL file's document is kept, or it is the near duplicate of a
    # kept one — never lost, and in both cases its text lost its NULs before it was stored.
    nul_docs = texts.filter(pl.col("source").str.ends_with("/nuls.jsonl"))
    nul_rejects = scan(ds, "rejects").filter(pl.col("source").str.ends_with("/nuls.jsonl")).collect()
    assert nul_docs.height + nul_rejects.height == 1
    if nul_rejects.height:
        assert nul_rejects["reason"].to_list() == ["near_duplicate"]
        assert "\x00" not in nul_rejects["excerpt"][0] and "age of wisdom" in nul_rejects["excerpt"][0]
