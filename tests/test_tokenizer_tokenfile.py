"""The token file format: what the writer produces and what the reader accepts or rejects."""

from __future__ import annotations

import numpy as np
import pytest

from tokenizer.tokenfile import (
    HEADER_BYTES,
    MAGIC,
    TokenFile,
    TokenFileError,
    TokenFileWriter,
)

EOS = 2


def write_docs(path, docs, vocab_size=1000, eos_id=EOS):
    with TokenFileWriter(path, vocab_size, eos_id) as writer:
        for doc in docs:
            writer.add_documents(np.asarray(doc, dtype=np.int64), [len(doc)])
    return TokenFile.open(path)


def test_header_is_256_int32_with_magic_version_count_width_vocab_eos(tmp_path):
    write_docs(tmp_path / "t.bin", [[5, 6, 7], [8]], vocab_size=1000)
    header = np.fromfile(tmp_path / "t.bin", dtype="<i4", count=256)
    assert header[:6].tolist() == [MAGIC, 1, 6, 2, 1000, EOS]
    assert not header[6:].any()
    assert (tmp_path / "t.bin").stat().st_size == HEADER_BYTES + 6 * 2


def test_documents_are_each_followed_by_eos_and_indexed(tmp_path):
    tf = write_docs(tmp_path / "t.bin", [[5, 6, 7], [], [8, 9]])
    assert tf.tokens.tolist() == [5, 6, 7, EOS, EOS, 8, 9, EOS]
    starts = tf.doc_starts()
    assert starts.tolist() == [0, 4, 5, 8]
    assert tf.tokens[starts[2] : starts[3]].tolist() == [8, 9, EOS]


def test_a_document_written_in_pieces_is_one_document(tmp_path):
    with TokenFileWriter(tmp_path / "t.bin", 1000, EOS) as writer:
        writer.write(np.array([5, 6]))
        writer.write(np.array([7]))
        writer.end_document()
        writer.add_documents(np.array([8, 9, 10]), [1, 2])
    tf = TokenFile.open(tmp_path / "t.bin")
    assert tf.tokens.tolist() == [5, 6, 7, EOS, 8, EOS, 9, 10, EOS]
    assert tf.doc_starts().tolist() == [0, 4, 6, 9]


def test_vocabulary_over_65536_is_stored_as_uint32(tmp_path):
    big = [70_000, 65_536, 3, 99_999]
    tf = write_docs(tmp_path / "t.bin", [big], vocab_size=100_000)
    assert tf.tokens.dtype == np.dtype("<u4")
    assert np.fromfile(tmp_path / "t.bin", dtype="<i4", count=4)[3] == 4
    assert tf.tokens.tolist() == big + [EOS]
    x, y = tf.sample_batch(np.random.default_rng(0), 2, 3)
    assert x.dtype == np.int64 and x.max() == 99_999


def test_vocabulary_of_exactly_65536_still_fits_uint16(tmp_path):
    tf = write_docs(tmp_path / "t.bin", [[65_535]], vocab_size=65_536)
    assert tf.tokens.dtype == np.dtype("<u2") and tf.tokens[0] == 65_535


def test_writer_refuses_ids_outside_the_vocabulary(tmp_path):
    with pytest.raises(TokenFileError, match="outside the vocabulary of 1000"):
        write_docs(tmp_path / "t.bin", [[1, 1000]], vocab_size=1000)
    assert not list(tmp_path.iterdir()), "a failed write leaves no file, temporary or final"


def test_truncated_file_is_rejected_with_the_expected_size(tmp_path):
    write_docs(tmp_path / "t.bin", [list(range(3, 103))])
    data = (tmp_path / "t.bin").read_bytes()
    (tmp_path / "t.bin").write_bytes(data[:-10])
    with pytest.raises(TokenFileError, match=r"header says 101 tokens \(1226 bytes\) but the file has 1216 bytes \(truncated\)"):
        TokenFile.open(tmp_path / "t.bin")


def test_file_shorter_than_the_header_is_rejected(tmp_path):
    (tmp_path / "t.bin").write_bytes(b"\x4c\x49\x4d\x54")
    with pytest.raises(TokenFileError, match="shorter than the 1024-byte token file header"):
        TokenFile.open(tmp_path / "t.bin")


def test_foreign_file_is_rejected_by_its_magic(tmp_path, shared_data):
    foreign = tmp_path / "input.bin"
    foreign.write_bytes((shared_data / "prose" / "tinyshakespeare.txt").read_bytes()[:4096])
    with pytest.raises(TokenFileError, match="not a tokenmill token file"):
        TokenFile.open(foreign)


def test_other_format_version_is_rejected(tmp_path):
    write_docs(tmp_path / "t.bin", [[5]])
    header = np.fromfile(tmp_path / "t.bin", dtype="<i4", count=256)
    header[1] = 2
    with open(tmp_path / "t.bin", "r+b") as handle:
        handle.write(header.tobytes())
    with pytest.raises(TokenFileError, match="format version 2, this reader knows 1"):
        TokenFile.open(tmp_path / "t.bin")


def test_width_that_does_not_match_the_vocabulary_is_rejected(tmp_path):
    write_docs(tmp_path / "t.bin", [[5, 6]])
    header = np.fromfile(tmp_path / "t.bin", dtype="<i4", count=256)
    header[4] = 100_000  # claims a uint32 vocabulary over uint16 tokens
    with open(tmp_path / "t.bin", "r+b") as handle:
        handle.write(header.tobytes())
    with pytest.raises(TokenFileError, match="2 bytes per token does not fit vocabulary 100000"):
        TokenFile.open(tmp_path / "t.bin")


def test_index_of_another_file_is_rejected(tmp_path):
    write_docs(tmp_path / "a.bin", [[5, 6]])
    write_docs(tmp_path / "b.bin", [[5, 6, 7]])
    (tmp_path / "a.idx").write_bytes((tmp_path / "b.idx").read_bytes())
    with pytest.raises(TokenFileError, match="indexes 4 tokens but .* holds 3"):
        TokenFile.open(tmp_path / "a.bin").doc_starts()


def test_sample_batch_gives_shifted_windows_from_the_file(tmp_path):
    tokens = list(range(3, 503))
    tf = write_docs(tmp_path / "t.bin", [tokens])
    x, y = tf.sample_batch(np.random.default_rng(1), batch_size=8, T=16)
    assert x.shape == y.shape == (8, 16) and x.dtype == y.dtype == np.int64
    stream = np.array(tokens + [EOS])
    for row_x, row_y in zip(x, y):
        start = int(row_x[0]) - 3
        assert row_x.tolist() == stream[start : start + 16].tolist()
        assert row_y.tolist() == stream[start + 1 : start + 17].tolist()


def test_sample_batch_is_reproducible_from_the_generator_seed(tmp_path):
    tf = write_docs(tmp_path / "t.bin", [list(range(3, 503))])
    a = tf.sample_batch(np.random.default_rng(7), 4, 8)
    b = tf.sample_batch(np.random.default_rng(7), 4, 8)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))


def test_iter_windows_walks_every_target_once_in_order(tmp_path):
    tf = write_docs(tmp_path / "t.bin", [list(range(3, 103))])  # 101 tokens with EOS
    batches = list(tf.iter_windows(T=10, batch_size=4))
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert y.ravel().tolist() == tf.tokens[1:101].tolist()
    assert x.ravel().tolist() == tf.tokens[0:100].tolist()


def test_windows_longer_than_the_file_are_refused(tmp_path):
    tf = write_docs(tmp_path / "t.bin", [[5, 6, 7]])
    with pytest.raises(TokenFileError, match="4 tokens, fewer than one window of 9"):
        tf.sample_batch(np.random.default_rng(0), 1, 8)


def test_empty_split_is_a_valid_file(tmp_path):
    tf = write_docs(tmp_path / "t.bin", [])
    assert tf.n_tokens == 0 and len(tf.tokens) == 0 and tf.doc_starts().tolist() == [0]
