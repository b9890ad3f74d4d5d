"""normalized_text_hash: copies that differ only in case, punctuation, compatibility characters or
whitespace get one signed 64-bit hash; texts that differ in their words do not."""

from __future__ import annotations

import re

import pytest
import xxhash

from pipeline.textnorm import normalize_text, normalized_text_hash


@pytest.fixture(scope="module")
def paragraphs(shared_data) -> list[str]:
    text = (shared_data / "prose" / "gutenberg" / "pg9198_complete-angler.txt").read_text(encoding="utf-8")
    return [p for p in re.split(r"\n\s*\n", text) if len(p.split()) >= 20]


def test_the_hash_is_xxh64_of_the_normal_form_as_a_signed_int64():
    normal = normalize_text("Hello,  World!\n")
    assert normal == "hello world"
    unsigned = xxhash.xxh64_intdigest(b"hello world")
    expected = unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned
    assert normalized_text_hash("Hello,  World!\n") == expected
    values = [normalized_text_hash(f"document {i}") for i in range(200)]
    assert all(-(1 << 63) <= v < 1 << 63 for v in values)
    assert any(v < 0 for v in values)  # the upper half of the unsigned range maps to negatives


@pytest.mark.shared
def test_a_rewrapped_recased_repunctuated_copy_has_the_same_hash(paragraphs):
    original = paragraphs[40]
    copy = " ".join(original.upper().split()).replace("--", " — ").replace('"', "“").replace(",", " ,")
    assert copy != original
    assert normalized_text_hash(copy) == normalized_text_hash(original)


def test_full_width_letters_and_ligatures_normalise_to_their_plain_forms():
    assert normalize_text("Ｔｈｅ ﬁrst ＡＣＴ") == "the first act"
    assert normalized_text_hash("Ｔｈｅ ﬁrst ＡＣＴ") == normalized_text_hash("the first act")


def test_unicode_punctuation_goes_and_other_symbols_stay():
    assert normalize_text("«Non», dit-il — ¿qué? “yes” ‘no’ …") == "non ditil qué yes no"
    assert normalize_text("a+b=c | $5 ~ 3^2") == "abc 5 32"
    assert normalize_text("© 2024 €5 🙂") == "© 2024 €5 🙂"


@pytest.mark.shared
def test_different_paragraphs_of_a_book_have_different_hashes(paragraphs):
    normal_forms = {normalize_text(p) for p in paragraphs}
    assert len({normalized_text_hash(p) for p in paragraphs}) == len(normal_forms) > 300


@pytest.mark.shared
def test_editions_differing_in_accented_letters_are_not_exact_copies(shared_data):
    # The ASCII and Latin-1 Project Gutenberg editions print "a propos" and "à propos": a
    # different word, left to near-duplicate detection.
    ascii_edition = (shared_data / "prose" / "gutenberg" / "pg9198_complete-angler.txt").read_text(encoding="utf-8")
    latin1_edition = (shared_data / "prose" / "gutenberg" / "pg9198_complete-angler_LATIN1-VARIANT_9198-8.txt"
                      ).read_text(encoding="latin-1")
    line = next(i for i, text in enumerate(ascii_edition.splitlines()) if "a propos" in text)
    plain, accented = ascii_edition.splitlines()[line], latin1_edition.splitlines()[line]
    assert "à propos" in accented
    assert normalized_text_hash(plain) != normalized_text_hash(accented)


@pytest.mark.parametrize("text", ["", "   \n\t", "!!!", "\ud800 lone surrogate", "\x00"])
def test_odd_input_hashes_without_error(text):
    assert isinstance(normalized_text_hash(text), int)


def test_empty_and_punctuation_only_texts_share_the_empty_normal_form():
    assert normalized_text_hash("") == normalized_text_hash(" ... ") == normalized_text_hash("\n—\n")
