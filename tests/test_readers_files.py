"""Input expansion and the JSONL, text, Parquet, HTML-file and Hugging Face readers.

Fixtures are written into tmp_path from public-domain text (tinyshakespeare, Project Gutenberg).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import ReadConfig
from pipeline.readers import InputNotFound, InputUnit, UnsupportedInput, expand_inputs, read_unit
from pipeline.readers.files import PARQUET_BATCH_ROWS
from pipeline.records import RawRecord, Rejection


@pytest.fixture(scope="module")
def shakespeare_lines(shared_data) -> list[str]:
    text = (shared_data / "prose" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()][:3000]


def read_all(spec: Path | str, cfg: ReadConfig | None = None) -> list[RawRecord | Rejection]:
    return [item for unit in expand_inputs([str(spec)]) for item in read_unit(unit, cfg or ReadConfig())]


# ---------------------------------------------------------------- expand_inputs

def test_a_missing_path_raises_input_not_found_naming_it(tmp_path):
    missing = tmp_path / "no-such-crawl.warc.gz"
    with pytest.raises(InputNotFound, match="no-such-crawl.warc.gz"):
        expand_inputs([str(missing)])


def test_a_glob_matching_nothing_raises_input_not_found(tmp_path):
    with pytest.raises(InputNotFound, match=r"\*\.jsonl"):
        expand_inputs([str(tmp_path / "*.jsonl")])


def test_a_named_file_of_unknown_format_is_refused(tmp_path):
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UnsupportedInput, match="table.csv"):
        expand_inputs([str(tmp_path / "table.csv")])


def test_a_folder_expands_recursively_to_one_sorted_unit_per_file(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "part.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "a.txt").write_text("words")
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "one.html").write_text("<p>one</p>")
    (tmp_path / "pages" / "two.htm").write_text("<p>two</p>")
    (tmp_path / "notes.md").write_text("not an input")
    units = expand_inputs([str(tmp_path)])
    assert [(u.format, u.key, u.paths) for u in units] == [
        ("text", str(tmp_path / "a.txt"), (str(tmp_path / "a.txt"),)),
        ("jsonl", str(tmp_path / "b" / "part.jsonl"), (str(tmp_path / "b" / "part.jsonl"),)),
        ("html", str(tmp_path / "pages" / "one.html"), (str(tmp_path / "pages" / "one.html"),)),
        ("html", str(tmp_path / "pages" / "two.htm"), (str(tmp_path / "pages" / "two.htm"),)),
    ]
    assert units[2].size_bytes == len("<p>one</p>")


def test_dot_prefixed_input_files_in_a_folder_are_one_hidden_file_rejection_each(tmp_path):
    (tmp_path / "a.txt").write_text("words")
    (tmp_path / "._a.txt").write_text("macOS litter")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.warc.gz").write_bytes(b"")
    (tmp_path / ".cache" / "notes.md").write_text("not an input at all")
    units = expand_inputs([str(tmp_path)])
    assert [(u.format, u.key) for u in units] == [
        ("hidden", str(tmp_path / "._a.txt")),
        ("hidden", str(tmp_path / ".cache" / "x.warc.gz")),
        ("text", str(tmp_path / "a.txt")),
    ]
    (item,) = read_unit(units[0], ReadConfig())
    assert (item.reason, item.stage, item.source, item.source_offset) == ("hidden_file", "read", str(tmp_path / "._a.txt"), 0)
    # Named on its own, a dot-prefixed file is an input like any other.
    assert [u.format for u in expand_inputs([str(tmp_path / "._a.txt")])] == ["text"]


def test_the_same_input_named_twice_is_one_unit(tmp_path):
    (tmp_path / "a.txt").write_text("words")
    units = expand_inputs([str(tmp_path / "a.txt"), str(tmp_path), str(tmp_path / "*.txt")])
    assert [u.key for u in units] == [str(tmp_path / "a.txt")]


def test_relative_specs_become_absolute_keys(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("words")
    monkeypatch.chdir(tmp_path)
    (unit,) = expand_inputs(["./a.txt"])
    assert unit.key == str(tmp_path / "a.txt")


# ---------------------------------------------------------------- JSONL

@pytest.mark.shared
def test_jsonl_gives_one_text_record_per_line_with_line_number_offsets_and_own_ids(tmp_path, shakespeare_lines):
    path = tmp_path / "plays.jsonl"
    rows = [{"id": n, "text": line, "url": f"https://example.org/{n}"} for n, line in enumerate(shakespeare_lines[:50])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = read_all(path)
    assert [(r.source_offset, r.body, r.own_id, r.url) for r in records] == [
        (n, r["text"], str(n), r["url"]) for n, r in enumerate(rows)
    ]
    assert all(r.kind == "text" and r.source == str(path) for r in records)


@pytest.mark.shared
def test_jsonl_skips_blank_lines_and_rejects_bad_ones_with_a_reason(tmp_path, shakespeare_lines):
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([
        json.dumps({"text": shakespeare_lines[0]}),
        "",
        '{"text": "unterminated',
        json.dumps({"title": "no text field"}),
        json.dumps(["a", "list"]),
        json.dumps({"text": shakespeare_lines[1]}),
    ]) + "\n")
    items = read_all(path)
    assert [(i.source_offset, "ok" if isinstance(i, RawRecord) else i.reason) for i in items] == [
        (0, "ok"), (2, "malformed_json"), (3, "malformed_record"), (4, "malformed_record"), (5, "ok"),
    ]


@pytest.mark.shared
def test_gzipped_jsonl_is_read_whatever_its_name(tmp_path, shakespeare_lines):
    payload = "".join(json.dumps({"text": line}) + "\n" for line in shakespeare_lines[:10]).encode()
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(payload))
    (tmp_path / "b.jsonl").write_bytes(gzip.compress(payload))  # gzip content under a plain name
    for name in ("a.jsonl.gz", "b.jsonl"):
        assert [r.body for r in read_all(tmp_path / name)] == shakespeare_lines[:10]


@pytest.mark.shared
def test_a_jsonl_gzip_cut_short_keeps_the_lines_before_and_ends_in_a_read_error(tmp_path, shakespeare_lines):
    payload = "".join(json.dumps({"text": line}) + "\n" for line in shakespeare_lines).encode()
    compressed = gzip.compress(payload)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(compressed[: len(compressed) // 2])
    items = read_all(path)
    assert items[-1].reason == "read_error" and str(path) in items[-1].detail
    assert len(items) > 100
    assert [r.body for r in items[:-1]] == shakespeare_lines[: len(items) - 1]


@pytest.mark.shared
def test_a_jsonl_line_with_a_lone_surrogate_is_rejected_and_its_neighbours_kept(tmp_path, shakespeare_lines):
    path = tmp_path / "surrogate.jsonl"
    path.write_text("\n".join([
        json.dumps({"text": shakespeare_lines[0]}),
        '{"text": "a \\ud800 b"}',                      # lone surrogate in the text
        '{"text": "fine", "url": "http://x/\\udfff"}',   # ... and in the url
        '{"text": "pair \\ud83d\\ude00 is an emoji"}',  # an escaped surrogate pair is valid
        json.dumps({"text": shakespeare_lines[1]}),
    ]) + "\n")
    items = read_all(path)
    assert [(i.source_offset, "ok" if isinstance(i, RawRecord) else i.reason) for i in items] == [
        (0, "ok"), (1, "invalid_unicode"), (2, "invalid_unicode"), (3, "ok"), (4, "ok"),
    ]
    assert "line 2" in items[1].detail and "U+D800" in items[1].detail and "'text'" in items[1].detail
    assert "'url'" in items[2].detail
    assert items[3].body == "pair \U0001f600 is an emoji"
    for item in items:  # nothing left that UTF-8 cannot hold
        for value in (item.detail, item.excerpt) if isinstance(item, Rejection) else (item.body,):
            value.encode("utf-8")


def test_a_jsonl_line_over_the_size_limit_is_rejected_without_being_held(tmp_path):
    limit = 10_000
    path = tmp_path / "huge.jsonl.gz"
    with gzip.open(path, "wb") as out:
        out.write(b'{"text": "before"}\n')
        out.write(b'{"text": "' + b"x" * (50 * limit) + b'"}\n')
        out.write(b'{"text": "' + b"y" * (limit - 20) + b'"}\n')  # just under the limit
        out.write(b'{"text": "after"}')  # no final newline
    items = read_all(path, ReadConfig(max_record_bytes=limit))
    assert [(i.source_offset, "ok" if isinstance(i, RawRecord) else i.reason) for i in items] == [
        (0, "ok"), (1, "too_large"), (2, "ok"), (3, "ok"),
    ]
    assert f"{50 * limit + 13} bytes" in items[1].detail and "line 2" in items[1].detail
    assert items[3].body == "after"


def test_capped_lines_never_reads_more_than_the_limit_at_once():
    import io

    from pipeline.readers.files import capped_lines

    class Recording(io.BytesIO):
        largest = 0

        def readline(self, size=-1):
            assert 0 < size  # never an unbounded readline
            line = super().readline(size)
            Recording.largest = max(Recording.largest, len(line))
            return line

    stream = Recording(b"short\n" + b"z" * 5_000_000 + b"\nlast\n")
    lines = list(capped_lines(stream, 100))
    assert lines == [(0, b"short\n", 6), (1, None, 5_000_001), (2, b"last\n", 5)]
    assert Recording.largest <= 1 << 20


# ---------------------------------------------------------------- plain text

@pytest.mark.shared
def test_a_text_file_is_one_record_holding_all_of_it(shared_data):
    path = shared_data / "prose" / "tinyshakespeare.txt"
    (record,) = read_all(path)
    assert record.kind == "text" and record.source_offset == 0
    assert record.body == path.read_text(encoding="utf-8")


@pytest.mark.shared
def test_a_latin1_text_file_is_decoded_by_detection(shared_data):
    path = shared_data / "prose" / "gutenberg" / "pg14263_katrine_LATIN1-VARIANT_14263-8.txt"
    (record,) = read_all(path)
    assert "\ufffd" not in record.body
    assert record.body[3039] == "É"  # byte 0xC9 at 3039 is not valid UTF-8


def test_a_gzipped_text_file_over_the_size_limit_is_rejected_after_reading_only_the_limit(tmp_path):
    path = tmp_path / "bomb.txt.gz"
    path.write_bytes(gzip.compress(b"word " * 4_000_000, compresslevel=9))  # 20 MB of text in ~20 kB
    (item,) = read_all(path, ReadConfig(max_record_bytes=1_000_000))
    assert item.reason == "too_large" and "1000000" in item.detail
    (record,) = read_all(path, ReadConfig(max_record_bytes=20_000_000))
    assert len(record.body) == 20_000_000


def test_a_binary_file_named_txt_is_rejected_as_undecodable(tmp_path):
    path = tmp_path / "noise.txt"
    path.write_bytes(bytes(range(256)) * 16)
    (item,) = read_all(path)
    assert item.reason == "undecodable"


# ---------------------------------------------------------------- Parquet

@pytest.mark.shared
def test_parquet_gives_one_record_per_row_across_batches(tmp_path, shakespeare_lines):
    n_rows = 2 * PARQUET_BATCH_ROWS + 17
    lines = shakespeare_lines[:n_rows]
    path = tmp_path / "plays.parquet"
    pq.write_table(pa.table({"text": lines, "id": list(range(n_rows)), "speaker": ["x"] * n_rows}), path,
                   row_group_size=500)
    records = read_all(path)
    assert [(r.source_offset, r.body, r.own_id) for r in records] == [(n, t, str(n)) for n, t in enumerate(lines)]


@pytest.mark.shared
def test_parquet_columns_come_from_the_config_and_null_text_is_a_malformed_record(tmp_path, shakespeare_lines):
    path = tmp_path / "renamed.parquet"
    pq.write_table(pa.table({"content": [shakespeare_lines[0], None], "doc": ["a", "b"]}), path)
    items = read_all(path, ReadConfig(text_column="content", id_column="doc"))
    assert (items[0].body, items[0].own_id) == (shakespeare_lines[0], "a")
    assert (items[1].reason, items[1].own_id) == ("malformed_record", "b")


def test_parquet_without_the_text_column_is_one_read_error_naming_the_columns(tmp_path):
    path = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"body": ["x"], "id": [1]}), path)
    (item,) = read_all(path)
    assert item.reason == "read_error"
    assert str(path) in item.detail and "body, id" in item.detail


# ---------------------------------------------------------------- HTML files

@pytest.mark.shared
def test_each_html_file_of_a_folder_is_one_record_with_its_own_path_as_source(tmp_path, shakespeare_lines):
    pages = {}
    for n, name in enumerate(["act1/scene1.html", "act1/scene2.htm", "act2/scene1.html.gz"]):
        body = f"<html><body><p>{shakespeare_lines[n]}</p></body></html>".encode()
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
        pages[str(path)] = body
    units = expand_inputs([str(tmp_path)])
    records = [record for unit in units for record in read_unit(unit, ReadConfig())]
    assert [u.key for u in units] == [r.source for r in records] == sorted(pages)
    assert {r.source: r.body for r in records} == pages
    assert all(r.kind == "html" and r.source_offset == 0 and r.http_charset is None for r in records)


def test_an_html_glob_is_one_unit_per_file(tmp_path):
    for name in ("a.html", "b.html"):
        (tmp_path / name).write_text("<p>x</p>")
    units = expand_inputs([str(tmp_path / "*.html")])
    assert [u.key for u in units] == [str(tmp_path / "a.html"), str(tmp_path / "b.html")]


def test_an_html_file_over_the_size_limit_is_rejected_and_the_others_still_read(tmp_path):
    (tmp_path / "big.html").write_bytes(b"<p>" + b"x" * 5000 + b"</p>")
    (tmp_path / "small.html").write_bytes(b"<p>small</p>")
    items = read_all(tmp_path, ReadConfig(max_record_bytes=1000))
    assert [("ok" if isinstance(i, RawRecord) else i.reason) for i in items] == ["too_large", "ok"]


def test_an_html_file_that_vanished_is_no_verdict_on_its_data(tmp_path):
    from pipeline.records import InputUnavailable

    unit = InputUnit(key=str(tmp_path / "gone.html"), format="html", paths=(str(tmp_path / "gone.html"),), size_bytes=0)
    with pytest.raises(InputUnavailable, match="gone.html: FileNotFoundError"):
        list(read_unit(unit, ReadConfig()))


# ---------------------------------------------------------------- Hugging Face datasets

@pytest.mark.shared
def test_a_saved_hf_dataset_folder_is_one_unit_read_row_by_row(tmp_path, shakespeare_lines):
    import datasets

    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": shakespeare_lines[:30], "id": [f"l{n}" for n in range(30)]}).save_to_disk(saved)
    (unit,) = expand_inputs([str(tmp_path)])
    assert (unit.format, unit.key) == ("hf", str(saved))
    assert expand_inputs([f"hf:{saved}"]) == [unit]
    records = list(read_unit(unit, ReadConfig()))
    assert [(r.source_offset, r.body, r.own_id) for r in records] == [
        (n, line, f"l{n}") for n, line in enumerate(shakespeare_lines[:30])
    ]


@pytest.mark.shared
def test_hf_load_dataset_streams_local_data_files_by_split(tmp_path, shakespeare_lines, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    data = tmp_path / "corpus"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in shakespeare_lines[:20]))
    (unit,) = expand_inputs([f"hf:{data}:train"])
    assert unit.key == f"hf:{data}:train"
    assert [r.body for r in read_unit(unit, ReadConfig())] == shakespeare_lines[:20]


@pytest.mark.shared
def test_hf_load_dataset_reads_the_named_configuration(tmp_path, shakespeare_lines, monkeypatch):
    # A dataset folder whose README declares two configurations, as Hub datasets do (allenai/c4 "en",
    # HuggingFaceFW/fineweb "sample-10BT"): hf:NAME:CONFIG:SPLIT reads the one named.
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    data = tmp_path / "corpus"
    for config, lines in (("early", shakespeare_lines[:10]), ("late", shakespeare_lines[10:25])):
        (data / config).mkdir(parents=True)
        (data / config / "train.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in lines))
    (data / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: early\n  data_files:\n  - split: train\n    path: early/train.jsonl\n"
        "- config_name: late\n  data_files:\n  - split: train\n    path: late/train.jsonl\n---\n"
    )
    (unit,) = expand_inputs([f"hf:{data}:late:train"])
    assert unit.key == f"hf:{data}:late:train"
    assert [r.body for r in read_unit(unit, ReadConfig())] == shakespeare_lines[10:25]
    (unit,) = expand_inputs([f"hf:{data}:early:train"])
    assert [r.body for r in read_unit(unit, ReadConfig())] == shakespeare_lines[:10]


@pytest.mark.parametrize(("spec", "config", "split"), [
    ("hf:allenai/c4", None, "train"),
    ("hf:allenai/c4:validation", None, "validation"),
    ("hf:allenai/c4:en:train", "en", "train"),
    ("hf:allenai/c4:train[:10%]", None, "train[:10%]"),  # a split slice keeps its colon
    ("hf:allenai/c4:en:train[10:20]", "en", "train[10:20]"),
])
def test_an_hf_spec_names_the_dataset_configuration_and_split(spec, config, split):
    from pipeline.readers.inputs import hf_config_and_split

    (unit,) = expand_inputs([spec])
    assert unit.paths == ("allenai/c4",)
    assert hf_config_and_split(unit) == (config, split)


def test_an_hf_spec_with_too_many_parts_is_a_clear_error():
    with pytest.raises(InputNotFound, match="hf:NAME_OR_PATH:CONFIG:SPLIT"):
        expand_inputs(["hf:allenai/c4:en:train:extra"])


def test_a_saved_hf_dataset_without_the_text_column_is_one_read_error(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"content": ["x"]}).save_to_disk(tmp_path / "saved")
    (item,) = read_all(tmp_path / "saved")
    assert item.reason == "read_error" and "content" in item.detail


def test_an_unloadable_hf_dataset_is_one_read_error(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    (tmp_path / "empty").mkdir()
    (item,) = read_all(f"hf:{tmp_path / 'empty'}")
    assert item.reason == "read_error"
