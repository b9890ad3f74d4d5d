"""Signatures from both batch paths (compiled kernels, plain Python for a few documents) are
datasketch's, value for value; shingles are what the docs say."""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa
import pytest
from datasketch import LeanMinHash, MinHash
from datasketch.hashfunc import sha1_hash64

from pipeline.dedup import minhash
from pipeline.dedup.minhash import (
    flat_shingle_hashes, from_lean_bytes, lean_minhash, permutations, shingle_hashes, signatures, to_lean_bytes,
)
from pipeline.dedup.shingles import normalise, shingle_set, words_of

EDGE_CASES = [
    "",
    "   \n\t ",
    "one",
    "Only four words here",
    "Exactly five words in this",
    "Naïve café — ÉLAN, Zoë's “quoted” façade; Straße. नमस्ते दुनिया 你好 世界",
    "pneumonoultramicroscopicsilicovolcanoconiosis " * 3 + "supercalifragilisticexpialidocious-and-then-some-more-letters x y",
    "a_b c-d e.f g/h i\u00a0j k\u2028l",
    # lowercasing that Python's str.lower does differently from Arrow's; marks, joiners, Ogham space
    "İSTANBUL ǅemal ΣΟΦΟΣ ﬁne Ⅻ ᾼ e\u0301te x\u200dy a\u1680b 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 😀 done",
]
PATHS = pytest.mark.parametrize("use_kernels", [True, False], ids=["compiled", "plain"])


@pytest.fixture(scope="module")
def paragraphs(shared_data) -> list[str]:
    text = (shared_data / "prose" / "wikitext2_valid.txt").read_text(encoding="utf-8")
    return [p for p in text.split("\n") if p.strip()][:400] + EDGE_CASES


def datasketch_signature(text: str, scheme: str, num_perm: int = 128, seed: int = 1, n: int = 5) -> np.ndarray:
    m = MinHash(num_perm=num_perm, seed=seed, scheme=scheme)
    m.update_batch([s.encode("utf-8") for s in shingle_set(text, n)])
    return m.hashvalues


@pytest.mark.shared
@PATHS
@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
def test_batch_signatures_equal_datasketch_update_on_real_text(paragraphs, scheme, use_kernels):
    sigs, counts = signatures(paragraphs, scheme=scheme, use_kernels=use_kernels)
    expected = np.stack([datasketch_signature(p, scheme) for p in paragraphs])
    assert np.array_equal(sigs, expected.astype(np.uint32))
    assert list(counts[-len(EDGE_CASES) :][:2]) == [0, 0]


@pytest.mark.shared
@PATHS
def test_signatures_follow_seed_num_perm_and_ngram(paragraphs, use_kernels):
    sigs, _ = signatures(paragraphs[:50], num_perm=64, seed=7, ngram=3, use_kernels=use_kernels)
    expected = np.stack([datasketch_signature(p, "affine32", num_perm=64, seed=7, n=3) for p in paragraphs[:50]])
    assert np.array_equal(sigs, expected)


@pytest.mark.shared
@PATHS
def test_shingle_hashes_are_datasketch_sha1_hash64_of_each_distinct_shingle(paragraphs, use_kernels):
    for text, hashes in zip(paragraphs, shingle_hashes(paragraphs, use_kernels=use_kernels)):
        expected = np.unique(np.array([sha1_hash64(s.encode()) for s in shingle_set(text)], np.uint64))
        assert np.array_equal(hashes, expected)


@pytest.mark.shared
def test_both_paths_agree_on_every_value_and_count_with_nulls_and_chunks(paragraphs):
    texts = pa.chunked_array([pa.array(paragraphs[:100] + [None], pa.string()), pa.array(paragraphs[100:], pa.string())])
    for scheme in ("affine32", "legacy"):
        compiled_sigs, compiled_counts = signatures(texts, scheme=scheme, use_kernels=True)
        plain_sigs, plain_counts = signatures(texts, scheme=scheme, use_kernels=False)
        assert np.array_equal(compiled_sigs, plain_sigs) and np.array_equal(compiled_counts, plain_counts)
    for compiled_part, plain_part in zip(flat_shingle_hashes(texts, 5, True), flat_shingle_hashes(texts, 5, False)):
        assert compiled_part.dtype == plain_part.dtype and np.array_equal(compiled_part, plain_part)


def test_permutations_are_datasketchs_for_every_scheme_and_seed():
    for scheme in ("affine32", "legacy"):
        for num_perm, seed in ((128, 1), (64, 7), (1, 0), (256, 12345)):
            expected = MinHash(num_perm=num_perm, seed=seed, scheme=scheme).permutations
            for ours, theirs in zip(permutations(num_perm, seed, scheme), expected):
                assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)


def test_a_process_signs_its_first_megabyte_in_plain_python_and_the_rest_compiled(monkeypatch):
    monkeypatch.delitem(sys.modules, "pipeline.dedup.kernels", raising=False)  # as in a fresh process
    monkeypatch.setattr(minhash, "_plain_left", 1000)
    small, large = pa.array(["a few words of text"] * 10), pa.array(["many more words of text"] * 100)
    assert not minhash.compiled(small)  # 10 texts fit in what is left
    assert minhash.compiled(large)  # past the budget: the kernels are worth loading ...
    assert minhash.compiled(small)  # ... and, loaded, used for everything after


def test_loaded_kernels_sign_everything(monkeypatch):
    signatures(["load the kernels"], use_kernels=True)
    monkeypatch.setattr(minhash, "_plain_left", 1 << 20)
    assert minhash.compiled(pa.array(["a few words"]))


@pytest.mark.shared
def test_stored_signatures_load_as_datasketch_lean_minhash(paragraphs):
    sigs, _ = signatures(paragraphs[:20])
    payloads = to_lean_bytes(sigs, seed=1)
    assert np.array_equal(from_lean_bytes(payloads, 128), sigs)
    lean = lean_minhash(payloads[3].as_py())
    original = MinHash(num_perm=128, seed=1)
    original.update_batch([s.encode() for s in shingle_set(paragraphs[3])])
    assert lean == LeanMinHash(original)


def test_normalising_folds_case_punctuation_and_whitespace():
    assert normalise(["  Hello,\n\nWORLD!  It's   a—test.  "]).to_pylist() == ["hello world it s a test"]
    assert words_of("Naïve CAFÉ") == ["naïve", "café"]  # letters outside ASCII are word characters


def test_short_text_is_one_shingle_and_empty_text_has_none():
    assert shingle_set("Three little words.", 5) == {"three little words"}
    assert shingle_set("?! ...", 5) == set()
    assert shingle_set("a b c d e f", 5) == {"a b c d e", "b c d e f"}


def test_compiled_sha1_equals_hashlib_for_one_and_several_blocks():
    import hashlib

    from pipeline.dedup.sha1 import sha1_prefix64_many

    rng = np.random.default_rng(0)
    messages = [bytes(rng.integers(0, 256, size=length, dtype=np.uint8)) for length in range(0, 200)] * 2
    data = np.frombuffer(b"".join(messages), np.uint8)
    ends = np.cumsum([len(m) for m in messages])
    bounds = np.column_stack([ends - [len(m) for m in messages], ends]).astype(np.int64)
    expected = [int.from_bytes(hashlib.sha1(m).digest()[:8], "little") for m in messages]
    assert sha1_prefix64_many(data, bounds).tolist() == expected
