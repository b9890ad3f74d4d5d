"""The WARC / ARC / WET reader, on the real archives of shared/data and on WARCs written here."""

from __future__ import annotations

import gzip
import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.config import ReadConfig
from pipeline.readers import expand_inputs, read_unit
from pipeline.readers.http_body import BadContentEncoding, TruncatedPayload, decode_http_payload, dechunk
from pipeline.readers.warc import parse_warc_date
from pipeline.records import RawRecord, Rejection

DOCUMENT_TYPES = ("response", "revisit", "conversion")
# A real per-record-gzipped crawl file that ships with the repository (sample/README.md): 190 records.
SAMPLE_WARC = Path(__file__).resolve().parent.parent / "sample" / "warc" / "bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz"
# Named here, not globbed, so a missing file fails the test instead of silently shrinking it.
REAL_WARCS = [
    "bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz",
    "bl-ukwa-2014_BL-20140325122341434_10resp_55revisit.warc.gz",
    "cc-main-2020-34_16pages.warc.gz",
    "cc-main-2024-22_whirlwind.warc.wat.gz",
    "cc-main-2024-22_whirlwind.warc.wet.gz",
    "cc-main-2024-22_whirlwind_1page.warc.gz",
    "wget-2024_dolma-sample-0000_22resp.warc.gz",
]
MALFORMED = [
    "aut__badexample.arc.gz",
    "aut__issue-493.warc",
    "aut__issue-514.warc",
    "pywb__missing-status-text.warc",
    "resiliparse__block-sized-records.warc.gz",
    "resiliparse__clipped.warc.gz",
    "ukwa__IAH-truncated.warc.gz",
    "ukwa__transfer_compression_brotli.warc.gz",
    "ukwa__truncated_datetime.warc",
    "warcio__bad.arc",
    "warcio__example-bad-non-chunked.warc.gz",
    "warcio__example-bad.warc.gz.bad",
    "warcio__example-digest.warc",
    "warcio__example-iana.org-chunked.warc",
    "warcio__example-space-in-target-uri.warc.gz",
    "warcio__example-trunc.warc",
    "warcio__example-wget-bad-target-uri.warc.gz",
    "warcio__example-wrong-chunks.warc.gz",
]


def read_items(path: Path, cfg: ReadConfig | None = None) -> list[RawRecord | Rejection]:
    (unit,) = expand_inputs([str(path)])
    return list(read_unit(unit, cfg or ReadConfig()))


def warcio_document_count(stream) -> int:
    """Document records warcio itself finds, counting up to the point where it fails."""
    count = 0
    try:
        for record in ArchiveIterator(stream, arc2warc=True):
            count += record.rec_type in DOCUMENT_TYPES
    except Exception:  # noqa: BLE001 - the count so far is what is compared
        pass
    return count


def reasons(items) -> Counter:
    return Counter(i.kind if isinstance(i, RawRecord) else i.reason for i in items)


def write_warc(path: Path, responses: list[tuple[list[tuple[str, str]], bytes]]) -> Path:
    """A gzipped WARC of 200 responses with the given HTTP headers and payload bytes, as stored."""
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for number, (headers, payload) in enumerate(responses):
            record = writer.create_warc_record(
                f"http://example.org/{number}", "response", payload=io.BytesIO(payload),
                http_headers=StatusAndHeaders("200 OK", headers, protocol="HTTP/1.1"),
            )
            writer.write_record(record)
    return path


@pytest.mark.shared
@pytest.mark.parametrize("name", REAL_WARCS)
def test_every_document_record_of_a_real_warc_ends_in_exactly_one_item(shared_data, name):
    path = shared_data / "warc" / name
    items = read_items(path)
    with open(path, "rb") as stream:
        assert len(items) == warcio_document_count(stream)
    assert len({(i.source, i.source_offset) for i in items}) == len(items)
    assert all(i.source == str(path) for i in items)


@pytest.mark.shared
def test_record_offsets_point_at_the_records_in_the_file(shared_data):
    path = shared_data / "warc" / "cc-main-2020-34_16pages.warc.gz"
    items = read_items(path)
    with open(path, "rb") as stream:
        for item in items:
            stream.seek(item.source_offset)
            record = next(iter(ArchiveIterator(stream)))
            assert record.rec_headers.get_header("WARC-Target-URI") == item.url


@pytest.mark.shared
def test_the_55_revisits_of_the_recrawl_are_exact_duplicates_naming_the_original(shared_data):
    items = read_items(shared_data / "warc" / "bl-ukwa-2014_BL-20140325122341434_10resp_55revisit.warc.gz")
    duplicates = [i for i in items if isinstance(i, Rejection) and i.reason == "exact_duplicate"]
    assert len(duplicates) == 55
    assert all(d.stage == "read" and "payload digest sha1:" in d.detail and d.url for d in duplicates)


@pytest.mark.shared
def test_the_wet_conversion_record_is_one_text_record(shared_data):
    (record,) = read_items(shared_data / "warc" / "cc-main-2024-22_whirlwind.warc.wet.gz")
    assert record.kind == "text" and isinstance(record.body, str)
    assert record.body.startswith("Escopete - Biquipedia")
    assert record.url.startswith("https://an.wikipedia.org/")
    assert record.fetched_at == datetime(2024, 5, 18, 1, 58, 10, tzinfo=UTC)


@pytest.mark.shared
def test_html_responses_keep_their_raw_bytes_and_header_charset(shared_data):
    path = shared_data / "warc" / "cc-main-2020-34_16pages.warc.gz"
    records = {r.url: r for r in read_items(path)}
    with open(path, "rb") as stream:
        stored = {
            r.rec_headers.get_header("WARC-Target-URI"): r.content_stream().read()
            for r in ArchiveIterator(stream) if r.rec_type == "response"
        }
    assert records["http://01spb.ru/company/"].http_charset == "windows-1251"
    assert records["http://037426.cn/"].http_charset == "gb2312"
    assert records["http://003338.cn/l41/481397.html"].http_charset is None
    assert {url: r.body for url, r in records.items()} == stored


@pytest.mark.shared
def test_non_2xx_responses_are_rejected_with_their_status_line(shared_data):
    items = read_items(shared_data / "warc" / "bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz")
    statuses = [i for i in items if isinstance(i, Rejection) and i.reason == "http_status"]
    assert sorted(s.detail for s in statuses) == ["302 Found", "403 Forbidden", "404 Not Found",
                                                  "404 Not Found", "404 Not Found"]


@pytest.mark.shared
def test_non_html_responses_are_rejected_with_their_content_type(shared_data):
    items = read_items(shared_data / "warc" / "bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz")
    types = Counter(i.detail for i in items if isinstance(i, Rejection) and i.reason == "not_html")
    assert types["image/jpeg"] == 5 and types["text/dns"] == 3 and types["text/css"] == 7


@pytest.mark.shared
def test_pages_over_the_size_limit_are_rejected_as_too_large(shared_data):
    items = read_items(shared_data / "warc" / "bl-ukwa-2014_BL-20140325121225068_65resp.warc.gz",
                       ReadConfig(max_record_bytes=100_000))
    too_large = [i for i in items if isinstance(i, Rejection) and i.reason == "too_large"]
    assert len(too_large) == 3  # the 781 KB, 480 KB and 290 KB pages
    assert all(len(i.body) <= 100_000 for i in items if isinstance(i, RawRecord))


@pytest.mark.shared
@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_archive_is_read_without_raising_and_without_losing_records(shared_data, name):
    path = shared_data / "warc_malformed" / name
    items = read_items(path)
    with open(path, "rb") as stream:
        assert len(items) >= warcio_document_count(stream)
    assert len({(i.source, i.source_offset) for i in items}) == len(items)
    assert all(isinstance(i, RawRecord) or i.stage == "read" for i in items)


@pytest.mark.shared
@pytest.mark.parametrize(
    ("name", "last_reason"),
    [
        ("resiliparse__clipped.warc.gz", "truncated_record"),  # body shorter than the WARC Content-Length
        ("warcio__example-trunc.warc", "truncated_record"),  # payload shorter than the HTTP Content-Length
        ("warcio__example-wrong-chunks.warc.gz", "read_error"),  # gzip members split records
        ("aut__badexample.arc.gz", "read_error"),  # whole-file gzip ARC with wrong lengths
    ],
)
def test_a_truncated_or_badly_gzipped_archive_ends_in_a_rejection_saying_so(shared_data, name, last_reason):
    items = read_items(shared_data / "warc_malformed" / name)
    assert items[-1].reason == last_reason


@pytest.mark.shared
def test_gzip_members_that_split_a_record_give_a_truncated_record_then_a_read_error(shared_data):
    path = shared_data / "warc_malformed" / "warcio__example-wrong-chunks.warc.gz"
    items = read_items(path)
    assert [(i.reason, i.source_offset) for i in items] == [("truncated_record", 0), ("read_error", 516)]
    assert items[1].detail.startswith(f"{path}: ArchiveLoadFailed: Unknown archive format")
    # The member at 1130 holds the split record's end and then a request record: nothing more to read.
    assert items[1].detail.endswith("reading resumed at the next record, offset 1130")


def test_a_corrupt_gzip_member_costs_its_record_and_reading_resumes_at_the_next_member(tmp_path):
    members = _sample_members()
    start, next_start = members[10], members[11]  # the 10th member holds a response
    path = _corrupted_copy(tmp_path, (start + next_start) // 2, 64)  # zeros inside its deflate data

    before, after = read_items(SAMPLE_WARC), read_items(path)
    errors = [i for i in after if isinstance(i, Rejection) and i.reason == "read_error"]
    # The damaged record is replaced by one read_error at its own offset ...
    assert [e.source_offset for e in errors] == [start]
    assert errors[0].detail.endswith(f"reading resumed at the next record, offset {next_start}")
    # ... and every record of the other 189 members is still read, each exactly once, as before.
    assert [i.source_offset for i in after] == [i.source_offset for i in before]
    assert reasons(after) == reasons(before) - Counter({"not_html": 1}) + Counter({"read_error": 1})


def _sample_members() -> list[int]:
    with open(SAMPLE_WARC, "rb") as stream:
        records = ArchiveIterator(stream)
        return [records.offset for _ in records] + [SAMPLE_WARC.stat().st_size]


def _corrupted_copy(tmp_path: Path, start: int, length: int, value: int = 0) -> Path:
    data = bytearray(SAMPLE_WARC.read_bytes())
    data[start:start + length] = bytes([value]) * length
    path = tmp_path / f"corrupt-{start}-{length}.warc.gz"
    path.write_bytes(bytes(data))
    return path


def test_corrupt_deflate_data_never_loses_the_records_after_it(tmp_path):
    # Seeded damage inside one gzip member at a time, anywhere in the file: every record of every
    # other member is still read, and no (source, offset) key is given twice.
    import random

    members = _sample_members()
    clean = {i.source_offset for i in read_items(SAMPLE_WARC)}
    rng = random.Random(20261125)
    for _ in range(40):
        k = rng.randrange(len(members) - 1)
        length = rng.choice([1, 4, 16])
        start = rng.randrange(members[k], members[k + 1] - length)
        items = read_items(_corrupted_copy(tmp_path, start, length, rng.randrange(256)))
        offsets = [i.source_offset for i in items]
        assert len(offsets) == len(set(offsets)), (start, length)
        assert clean - {members[k]} <= set(offsets), (start, length)


def test_deflate_data_warcio_would_drop_silently_becomes_a_read_error(tmp_path):
    # warcio prints the zlib error of a member broken off mid-stream and reads on as if the file
    # had ended there: 16 zero bytes inside the biggest response would cost every later record.
    members = _sample_members()
    k = max(range(len(members) - 1), key=lambda i: members[i + 1] - members[i])
    items = read_items(_corrupted_copy(tmp_path, (members[k] + members[k + 1]) // 2, 16))
    errors = [i for i in items if isinstance(i, Rejection) and i.reason == "read_error"]
    assert len(errors) == 1 and "corrupt compressed data" in errors[0].detail
    assert {i.source_offset for i in read_items(SAMPLE_WARC)} - {members[k]} <= {i.source_offset for i in items}


def test_a_damaged_gzip_header_on_the_first_member_costs_only_that_member(tmp_path):
    members = _sample_members()
    items = read_items(_corrupted_copy(tmp_path, 0, 2))  # the gzip magic of the warcinfo record
    assert (items[0].reason, items[0].source_offset) == ("read_error", 0)
    assert items[0].detail.endswith(f"reading resumed at the next record, offset {members[1]}")
    assert reasons(items[1:]) == reasons(read_items(SAMPLE_WARC))


@pytest.mark.shared
def test_reading_resumes_at_the_next_record_of_a_per_record_gzipped_arc(shared_data, tmp_path):
    # The three whole records of the real ARC aut__badexample (a filedesc header, a dns: capture,
    # robots.txt), each gzipped as its own member as crawlers write them, the middle one damaged.
    arc = gzip.decompress((shared_data / "warc_malformed" / "aut__badexample.arc.gz").read_bytes())
    bounds = [0, 1390, 1507, 2369]  # the record starts warcio reports in the decompressed file
    members = [gzip.compress(arc[a:b]) for a, b in zip(bounds, bounds[1:])]
    clean, broken = tmp_path / "clean.arc.gz", tmp_path / "broken.arc.gz"
    clean.write_bytes(b"".join(members))
    middle = bytearray(members[1])
    middle[len(middle) // 2:len(middle) // 2 + 8] = bytes(8)
    broken.write_bytes(members[0] + bytes(middle) + members[2])
    robots_offset = len(members[0]) + len(members[1])

    before, after = read_items(clean), read_items(broken)
    assert [i.source_offset for i in before][-1] == robots_offset  # robots.txt, read from the clean file
    errors = [i for i in after if isinstance(i, Rejection) and i.reason == "read_error"]
    assert len(errors) == 1 and errors[0].detail.endswith(f"reading resumed at the next record, offset {robots_offset}")
    assert [(i.source_offset, getattr(i, "reason", "html")) for i in after if i.source_offset == robots_offset] == \
        [(i.source_offset, getattr(i, "reason", "html")) for i in before if i.source_offset == robots_offset]


def test_garbage_between_records_of_an_uncompressed_warc_loses_no_record(tmp_path):
    plain = gzip.decompress(SAMPLE_WARC.read_bytes())
    cut = plain.find(b"WARC/1.0", len(plain) // 2)
    path = tmp_path / "garbage.warc"
    path.write_bytes(plain[:cut] + b"this line is not a WARC record\r\n" * 3 + plain[cut:])
    before, after = read_items(SAMPLE_WARC), read_items(path)
    kept = lambda items: Counter(i.kind for i in items if isinstance(i, RawRecord))  # noqa: E731
    assert kept(after) == kept(before) == Counter({"html": 32})
    assert reasons(after)["not_html"] == reasons(before)["not_html"]
    errors = [i for i in after if isinstance(i, Rejection) and i.reason == "read_error"]
    assert len(errors) == 1 and "reading resumed at the next record" in errors[0].detail


@pytest.mark.shared
@pytest.mark.parametrize("name", ["warcio__example-bad-non-chunked.warc.gz", "warcio__example-bad.warc.gz.bad"])
def test_a_whole_file_gzipped_warc_is_read_in_full_through_a_streaming_gunzip(shared_data, name):
    path = shared_data / "warc_malformed" / name
    items = read_items(path)
    with gzip.open(path, "rb") as unzipped:
        assert len(items) == warcio_document_count(unzipped) > 1
    assert not any(isinstance(i, Rejection) and i.reason == "read_error" for i in items)


@pytest.mark.shared
def test_a_warc_cut_mid_record_keeps_the_records_before_the_cut_and_rejects_the_cut_one(shared_data, tmp_path):
    whole = shared_data / "warc" / "cc-main-2020-34_16pages.warc.gz"
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(whole.read_bytes()[:72_000])  # inside the gzip member of the 8th response (70222-74681)
    items = read_items(cut)
    assert reasons(items) == Counter({"html": 7, "truncated_record": 1})
    assert (items[-1].reason, items[-1].source_offset) == ("truncated_record", 70222)


@pytest.mark.shared
def test_a_warc_cut_inside_http_headers_ends_in_a_read_error_at_that_record(shared_data, tmp_path):
    cut = tmp_path / "cut.warc"
    cut.write_bytes((shared_data / "warc_malformed" / "aut__issue-514.warc").read_bytes()[:3000])
    items = read_items(cut)
    assert [(i.reason, i.source_offset) for i in items] == [("http_status", 1074), ("read_error", 2661)]


@pytest.mark.shared
@pytest.mark.parametrize(
    "name", ["warcio__example-iana.org-chunked.warc", "aut__issue-514.warc", "ukwa__transfer_compression_brotli.warc.gz"]
)
def test_chunked_and_brotli_payloads_come_out_decoded(shared_data, name):
    (page,) = [i for i in read_items(shared_data / "warc_malformed" / name) if isinstance(i, RawRecord)]
    assert page.body.lstrip().startswith(b"<")
    assert b"<html" in page.body.lower()


@pytest.mark.shared
def test_gzip_content_encoding_is_removed(shared_data):
    pages = [i for i in read_items(shared_data / "warc_malformed" / "aut__issue-493.warc") if isinstance(i, RawRecord)]
    assert len(pages) == 4
    assert all(p.body.lstrip().lower().startswith((b"<!doctype", b"<html")) for p in pages)


@pytest.mark.shared
def test_a_warc_date_without_seconds_or_zone_is_read_as_utc(shared_data):
    (page,) = [i for i in read_items(shared_data / "warc_malformed" / "ukwa__truncated_datetime.warc")
               if isinstance(i, RawRecord)]
    assert page.fetched_at == datetime(2019, 8, 15, 1, 2, tzinfo=UTC)


@pytest.mark.shared
def test_the_malformed_folder_expands_to_every_archive_in_it_sniffing_odd_names(shared_data):
    units = expand_inputs([str(shared_data / "warc_malformed")])
    assert [Path(u.key).name for u in units] == MALFORMED
    assert {u.format for u in units} == {"warc"}


def test_an_archive_that_vanished_is_no_verdict_on_its_data(tmp_path):
    from pipeline.records import InputUnavailable

    path = write_warc(tmp_path / "gone.warc.gz", [])
    (unit,) = expand_inputs([str(path)])
    path.unlink()  # a file gone is the environment's failure: the input is read again later
    with pytest.raises(InputUnavailable, match="gone.warc.gz: FileNotFoundError"):
        list(read_unit(unit, ReadConfig()))


def test_a_payload_that_is_not_in_its_declared_content_encoding_is_rejected(tmp_path):
    path = write_warc(tmp_path / "x.warc.gz", [([("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
                                                b"\x00\x01 binary, not gzip")])
    (item,) = read_items(path)
    assert item.reason == "bad_content_encoding"


def test_a_plain_html_payload_under_a_stale_content_encoding_header_is_kept(tmp_path):
    body = b"<html><body><p>Now is the winter of our discontent</p></body></html>"
    path = write_warc(tmp_path / "x.warc.gz", [([("Content-Type", "text/html"), ("Content-Encoding", "gzip")], body)])
    (item,) = read_items(path)
    assert item.body == body


def test_a_response_without_content_type_is_sniffed(tmp_path):
    html = b"\n  <!DOCTYPE html><html><body>Made glorious summer by this sun of York</body></html>"
    path = write_warc(tmp_path / "x.warc.gz", [([], html), ([], b"\x89PNG\r\n\x1a\n not a page")])
    page, image = read_items(path)
    assert page.kind == "html" and page.body == html
    assert image.reason == "not_html"


def test_parse_warc_date_is_lenient_and_always_utc():
    assert parse_warc_date("2014-03-25T12:12:24Z") == datetime(2014, 3, 25, 12, 12, 24, tzinfo=UTC)
    assert parse_warc_date("2024-05-18T01:58:10.123456789Z") == datetime(2024, 5, 18, 1, 58, 10, 123456, tzinfo=UTC)
    assert parse_warc_date("20080430204825") == datetime(2008, 4, 30, 20, 48, 25, tzinfo=UTC)
    assert parse_warc_date("not a date") is None


def test_dechunk_joins_chunks_and_leaves_unchunked_payloads_alone():
    assert dechunk(b"5\r\n<html\r\n1;ext=1\r\n>\r\n0\r\n\r\n") == b"<html>"
    assert dechunk(b"<html>already de-chunked</html>") is None
    with pytest.raises(TruncatedPayload):
        dechunk(b"10\r\n<html>")


def test_a_truncated_gzip_payload_is_not_mistaken_for_a_page():
    whole = gzip.compress(b"<html>" + b"to be or not to be " * 200 + b"</html>")
    with pytest.raises(TruncatedPayload):
        decode_http_payload(whole[: len(whole) // 2], None, "gzip", 1_000_000)
    with pytest.raises(BadContentEncoding):
        decode_http_payload(b"\x00\x01\x02", None, "zstd", 1_000_000)


def test_revisit_records_are_exact_duplicates_even_without_http_headers(tmp_path):
    path = tmp_path / "revisit.warc"
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=False)
        writer.write_record(writer.create_warc_record(
            "http://example.org/", "revisit", payload=io.BytesIO(b""),
            warc_headers_dict={"WARC-Refers-To-Target-URI": "http://example.org/",
                               "WARC-Refers-To-Date": "2014-03-25T12:12:38Z",
                               "WARC-Payload-Digest": "sha1:AAAA"},
        ))
    (item,) = read_items(path)
    assert item.reason == "exact_duplicate"
    assert "2014-03-25T12:12:38Z" in item.detail and "sha1:AAAA" in item.detail


@pytest.mark.shared
def test_reading_the_same_file_twice_gives_the_same_items(shared_data):
    path = shared_data / "warc" / "wget-2024_dolma-sample-0000_22resp.warc.gz"
    first, second = read_items(path), read_items(path)
    assert [(i.source_offset, i.body) for i in first] == [(i.source_offset, i.body) for i in second]
