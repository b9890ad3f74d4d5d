"""Text survives the tokenizer: decode(encode(text)) == text for real text in many scripts."""

from __future__ import annotations

import zipfile

import pytest
import sentencepiece as spm

from tokenizer.codec import Codec
from tokenizer.sample import BoundedSample
from tokenizer.train import EOS_ID, TokenizerSettings, TokenizerTrainingError, train_tokenizer

pytestmark = pytest.mark.shared


def udhr_texts(shared_data) -> dict[str, str]:
    with zipfile.ZipFile(shared_data / "lid" / "udhr2_unicode.zip") as archive:
        return {
            name: archive.read(name).decode("utf-8") for name in sorted(archive.namelist()) if name.endswith(".txt")
        }


def lingua_texts(shared_data) -> dict[str, str]:
    folder = shared_data / "lid" / "lingua_sentences_head100"
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.txt"))}


@pytest.fixture(scope="module")
def codec(shared_data) -> Codec:
    # English and a spread of scripts in the sample; everything else must come back via byte fallback.
    udhr = udhr_texts(shared_data)
    sample = [udhr[f"udhr2/{code}.txt"] for code in ("eng", "deu", "rus", "arb", "cmn_hans", "hin", "jpn", "tha")]
    model = train_tokenizer(BoundedSample(sample, 400_000), TokenizerSettings(vocab_size=2000))
    return Codec(spm.SentencePieceProcessor(model_proto=model))


def test_every_udhr_translation_round_trips(codec, shared_data):
    texts = udhr_texts(shared_data)
    assert len(texts) > 300
    broken = [name for name, text in texts.items() if codec.decode(codec.encode(text)) != text]
    assert broken == []


def test_every_lingua_web_sentence_file_round_trips(codec, shared_data):
    texts = lingua_texts(shared_data)
    assert len(texts) == 75
    broken = [name for name, text in texts.items() if codec.decode(codec.encode(text)) != text]
    assert broken == []


def test_batch_encoding_equals_one_document_at_a_time(codec, shared_data):
    texts = list(lingua_texts(shared_data).values())
    flat, lengths = codec.encode_documents(texts)
    assert lengths.tolist() == [len(codec.encode(t)) for t in texts]
    assert flat[: lengths[0]].tolist() == codec.encode(texts[0])


def test_line_by_line_encoding_gives_the_ids_of_whole_text_encoding(codec, shared_data):
    text = (shared_data / "prose" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:200_000]
    assert codec.encode(text) == codec.sp.encode(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "  two leading spaces, trailing tab\t",
        "windows\r\nline ends\r\n\r\n",
        "several   inner    spaces\n\n\nand blank lines",
        "a literal \u2581 lower one-eighth block and \u2581\u2581 two",
        "</s> <s> <unk> <pad> <0x41> look like special pieces",
        "nul \x00 bell \x07 form feed \x0c unit separator \x1f",
        "line separator \u2028 paragraph separator \u2029 zero width joiner \u200d",
        "emoji 👩‍👩‍👧 and a private use char \ue000 and \U0010fffd",
        "combining e\u0301 vs precomposed é, ligature ﬁ, fullwidth ＡＢＣ",
        "digits 1234567890 split one by one",
    ],
)
def test_edge_cases_round_trip(codec, text):
    assert codec.decode(codec.encode(text)) == text


def test_text_never_produces_unknown_or_end_of_document_ids(codec, shared_data):
    ids = set(codec.encode("".join(udhr_texts(shared_data).values())))
    assert codec.sp.unk_id() not in ids and EOS_ID not in ids


def test_newline_is_one_piece_of_its_own(codec):
    assert codec.encode("a\nb") == codec.encode("a") + [codec.newline_id] + codec.encode("b")


def test_vocabulary_too_small_for_the_sample_is_a_clear_error(shared_data):
    udhr = udhr_texts(shared_data)
    chinese = [udhr["udhr2/cmn_hans.txt"], udhr["udhr2/jpn.txt"]]
    with pytest.raises(TokenizerTrainingError, match="Vocabulary size.*smaller --vocab-size"):
        train_tokenizer(BoundedSample(chinese, 200_000), TokenizerSettings(vocab_size=400, character_coverage=1.0))
