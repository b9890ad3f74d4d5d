"""`tokenmill tokenize`: from a dataset version or text files to a complete, reproducible token directory."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from tokenizer.cli import tokenize_command, tokenize_dataset, tokenize_text
from tokenizer.sample import VAL_SALT, key_hash, threshold
from tokenizer.sources import TokenizeError
from tokenizer.tokenfile import TokenFile
from tokenizer.tokensdir import FILES, TOKENIZER_NAME, load_codec
from tokenizer.train import EOS_ID
from warehouse.layout import DatasetPaths
from warehouse.read import iter_doc_batches
from warehouse.schema import docs_schema

pytestmark = pytest.mark.shared

SMALL = {"vocab_size": 1000, "sample_bytes": 300_000}


def udhr(shared_data, limit=120) -> list[tuple[str, str]]:
    """(language file, text) for the first `limit` UDHR translations: many scripts, real text."""
    with zipfile.ZipFile(shared_data / "lid" / "udhr2_unicode.zip") as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".txt"))[:limit]
        return [(name, archive.read(name).decode("utf-8")) for name in names]


def write_docs(root, name, docs: list[tuple[str, str]], commits=2) -> str:
    """A warehouse docs table holding `docs` (id, text), appended in `commits` transactions."""
    path = DatasetPaths(str(root), name).docs
    for chunk in np.array_split(np.arange(len(docs)), commits):
        rows = [{"id": docs[i][0], "source": "udhr2.zip", "source_offset": int(i), "text": docs[i][1]} for i in chunk]
        write_deltalake(path, pa.Table.from_pylist(rows, schema=docs_schema([])), mode="append")
    return f"{root}/{name}"


@pytest.fixture(scope="module")
def dataset_build(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("warehouse")
    docs = udhr(shared_data)
    spec = write_docs(root, "udhr", docs)
    result = tokenize_dataset(spec, val_fraction=0.1, workers=2, **SMALL)
    return docs, spec, result


def read_all(out, split) -> TokenFile:
    return TokenFile.open(out / f"{split}.bin")


def decoded_documents(out, split) -> list[str]:
    tf, sp = read_all(out, split), load_codec(out / TOKENIZER_NAME).sp
    starts = tf.doc_starts()
    assert np.all(tf.tokens[starts[1:] - 1] == EOS_ID), "every document ends with EOS"
    return [sp.decode(tf.tokens[a : b - 1].tolist()) for a, b in zip(starts[:-1], starts[1:])]


def table_order(spec) -> list[tuple[str, str]]:
    batches = iter_doc_batches(DatasetPaths.parse(spec), columns=("id", "text"))
    return [(row["id"], row["text"]) for batch in batches for row in batch.to_pylist()]


def test_dataset_goes_to_the_warehouse_tokens_folder_named_by_settings_and_version(dataset_build):
    _, spec, result = dataset_build
    assert result.tokenizer_id == "bpe-1k-v1"
    assert str(result.out) == DatasetPaths.parse(spec).tokens("bpe-1k-v1") and result.out.is_dir()
    assert sorted(os.listdir(result.out)) == sorted(FILES)


def test_header_token_count_is_the_sum_of_per_document_encodes_plus_eos(dataset_build):
    docs, _, result = dataset_build
    codec = load_codec(result.out / TOKENIZER_NAME)
    expected = sum(len(codec.encode(text)) + 1 for _, text in docs)
    assert read_all(result.out, "train").n_tokens + read_all(result.out, "val").n_tokens == expected
    assert result.meta["train_tokens"] + result.meta["val_tokens"] == expected


def test_every_document_decodes_back_from_its_split_in_table_order(dataset_build):
    _, spec, result = dataset_build
    docs = table_order(spec)
    is_val = [key_hash(VAL_SALT, doc_id) < threshold(0.1) for doc_id, _ in docs]
    assert decoded_documents(result.out, "val") == [text for (_, text), v in zip(docs, is_val) if v]
    assert decoded_documents(result.out, "train") == [text for (_, text), v in zip(docs, is_val) if not v]


def test_meta_records_version_and_bytes_docs_tokens_per_split(dataset_build):
    docs, spec, result = dataset_build
    meta = json.loads((result.out / "meta.json").read_text())
    assert meta["dataset"] == spec and meta["dataset_version"] == 1
    assert meta["train_bytes"] + meta["val_bytes"] == sum(len(t.encode()) for _, t in docs)
    assert meta["train_docs"] + meta["val_docs"] == len(docs) and meta["val_docs"] > 0
    assert meta["train_tokens"] == read_all(result.out, "train").n_tokens
    assert (meta["vocab_size"], meta["eos_id"], meta["token_dtype"]) == (1000, EOS_ID, "uint16")


def test_tokenizer_sample_is_bounded_in_bytes(dataset_build):
    _, _, result = dataset_build
    assert 0 < result.meta["sample"]["bytes"] <= SMALL["sample_bytes"] < result.meta["train_bytes"]


def test_rerun_with_same_inputs_and_settings_touches_nothing(dataset_build):
    _, spec, result = dataset_build
    before = {name: (result.out / name).stat().st_mtime_ns for name in FILES}
    again = tokenize_dataset(spec, val_fraction=0.1, workers=1, **SMALL)
    assert again.reused and again.out == result.out
    assert {name: (result.out / name).stat().st_mtime_ns for name in FILES} == before


def test_new_dataset_version_gets_its_own_tokens(dataset_build, shared_data, tmp_path):
    docs, _, _ = dataset_build
    spec = write_docs(tmp_path, "udhr", docs[:40], commits=3)
    result = tokenize_dataset(spec, workers=1, **SMALL)
    assert result.tokenizer_id == "bpe-1k-v2" and result.meta["dataset_version"] == 2


def test_same_inputs_give_byte_identical_files_whatever_the_worker_count(shared_data, tmp_path):
    spec = write_docs(tmp_path, "d", udhr(shared_data, limit=60))
    one = tokenize_dataset(spec, out=tmp_path / "one", workers=1, **SMALL)
    two = tokenize_dataset(spec, out=tmp_path / "two", workers=2, **SMALL)
    for name in FILES:
        assert (one.out / name).read_bytes() == (two.out / name).read_bytes(), name


def test_unigram_model_type_is_an_option(shared_data, tmp_path):
    docs = udhr(shared_data, limit=40)
    spec = write_docs(tmp_path, "d", docs)
    result = tokenize_dataset(spec, model_type="unigram", workers=1, **SMALL)
    assert result.tokenizer_id == "unigram-1k-v1"
    decoded = decoded_documents(result.out, "train") + decoded_documents(result.out, "val")
    assert sorted(decoded) == sorted(text for _, text in docs)


def test_small_dataset_still_gets_one_validation_document(shared_data, tmp_path):
    spec = write_docs(tmp_path, "d", udhr(shared_data, limit=3), commits=1)
    result = tokenize_dataset(spec, val_fraction=0.01, workers=1, **SMALL)
    assert (result.meta["train_docs"], result.meta["val_docs"]) == (2, 1)


def test_text_validation_is_the_last_fraction_of_the_text(shared_data, tmp_path):
    path = shared_data / "prose" / "tinyshakespeare.txt"
    text = path.read_text(encoding="utf-8")
    result = tokenize_text([path], tmp_path / "out", val_fraction=0.1, workers=2, **SMALL)
    sp = load_codec(result.out / TOKENIZER_NAME).sp
    train = sp.decode(read_all(result.out, "train").tokens[:-1].tolist())
    val = sp.decode(read_all(result.out, "val").tokens[:-1].tolist())
    assert train + val == text
    # nanoGPT's cut at 90 %, moved to the start of the next line
    assert 0 <= len(train) - len(text) * 0.9 < 100 and train.endswith("\n")
    assert (result.meta["train_bytes"], result.meta["val_bytes"]) == (len(train.encode()), len(val.encode()))


def test_text_files_split_across_files_each_file_a_document(shared_data, tmp_path):
    gutenberg = shared_data / "prose" / "gutenberg"
    files = [gutenberg / "pg9198_complete-angler.txt", gutenberg / "pg14263_katrine.txt"]
    result = tokenize_text(files, tmp_path / "out", val_fraction=0.3, workers=2, **SMALL)
    train, val = read_all(result.out, "train"), read_all(result.out, "val")
    # The cut falls inside the second file: train = file 1 + head of file 2, val = its tail.
    assert len(train.doc_starts()) - 1 == 2 and len(val.doc_starts()) - 1 == 1
    sp = load_codec(result.out / TOKENIZER_NAME).sp
    second = files[1].read_bytes().decode("utf-8")  # not read_text: it would turn \r\n into \n
    head = sp.decode(train.tokens[train.doc_starts()[1] : -1].tolist())
    assert head + sp.decode(val.tokens[:-1].tolist()) == second


def test_text_that_is_not_utf8_is_refused_with_the_file_named(shared_data, tmp_path):
    latin1 = shared_data / "prose" / "gutenberg" / "pg14263_katrine_LATIN1-VARIANT_14263-8.txt"
    with pytest.raises(TokenizeError, match=r"LATIN1-VARIANT_14263-8.txt: not UTF-8 \(invalid bytes near byte \d+\)"):
        tokenize_text([latin1], tmp_path / "out", **SMALL)
    assert not (tmp_path / "out").exists()


def test_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(TokenizeError, match="no docs table at .*has this dataset been built"):
        tokenize_dataset(f"{tmp_path}/nothing", **SMALL)


def test_out_directory_with_other_files_is_never_replaced(shared_data, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(TokenizeError, match="not tokenmill token files \\(notes.txt\\)"):
        tokenize_text([shared_data / "prose" / "tinyshakespeare.txt"], tmp_path / "out", **SMALL)
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_changed_settings_rebuild_in_place(shared_data, tmp_path):
    path = shared_data / "prose" / "tinyshakespeare.txt"
    first = tokenize_text([path], tmp_path / "out", val_fraction=0.1, workers=1, **SMALL)
    second = tokenize_text([path], tmp_path / "out", val_fraction=0.2, workers=1, **SMALL)
    assert not second.reused and second.meta["val_bytes"] > first.meta["val_bytes"]
    assert sorted(os.listdir(tmp_path)) == ["out"], "no staging or previous directory is left behind"


def test_command_takes_exactly_one_input_kind(tmp_path):
    with pytest.raises(TokenizeError, match="exactly one of --dataset"):
        tokenize_command(dataset=None, text=None, out=tmp_path)
    with pytest.raises(TokenizeError, match="exactly one of --dataset"):
        tokenize_command(dataset=f"{tmp_path}/d", text=[tmp_path / "a.txt"], out=tmp_path)


@pytest.mark.shared
def test_the_readme_tokenize_command_takes_several_text_files(shared_data, tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "tokenmill tokenize (--dataset DIR/NAME | --text FILE...)" in readme
    text = (shared_data / "prose" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(text[:300_000], encoding="utf-8")
    b.write_text(text[300_000:600_000], encoding="utf-8")
    result = CliRunner().invoke(app, ["tokenize", "--text", str(a), str(b), "--out", str(tmp_path / "tok")])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "tok" / "meta.json").read_text())
    assert meta["dataset"] == [str(a), str(b)]
    assert meta["train_bytes"] + meta["val_bytes"] == len(text[:600_000].encode())
    assert meta["vocab_size"] == 1024  # sized to ~540 kB of training text
    stray = CliRunner().invoke(app, ["tokenize", str(a), "--out", str(tmp_path / "x")])
    assert stray.exit_code == 2 and "--text" in stray.output
