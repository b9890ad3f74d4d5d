"""The model-based quality score: a fastText classifier's probability that a document is "hq".

DCLM and FineWeb-Edu filter with such a score; dolma and NeMo Curator compute it as one more
column. A build with `[quality.classifier] model_path = ...` fills `quality_score` of every
document with it (0..1), and with `min_score` rejects documents below it
(`quality_classifier:min_score`). `tokenmill quality train` (pipeline/quality/classifier_train.py)
makes such a model; any fastText supervised model whose labels include `positive_label` works.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.config import ClassifierConfig
from pipeline.fasttext_model import load_model, predict
from pipeline.records import Document, Rejection
from pipeline.stage import Stage
from warehouse.errors import UsageError

REASON = "quality_classifier:min_score"


class QualityClassifier:
    """Scores documents; built once per worker process, its model loaded on first use."""

    def __init__(self, cfg: ClassifierConfig):
        if cfg.model_path is None:
            raise UsageError("QualityClassifier needs quality.classifier.model_path")
        self.cfg = cfg
        self.model_path = Path(cfg.model_path)
        self._model = None

    @property
    def model(self):
        if self._model is None:
            self._model = load_model(self.model_path, "set quality.classifier.model_path in the build config "
                                     "to a model made by `tokenmill quality train`")
            labels = {label.removeprefix("__label__") for label in self._model.get_labels()}
            if self.cfg.positive_label not in labels:
                raise UsageError(f"{self.model_path}: no label {self.cfg.positive_label!r} "
                                 f"(labels: {', '.join(sorted(labels))}); set quality.classifier.positive_label")
        return self._model

    def __getstate__(self):
        # Pickled to worker processes without the model: each worker loads its own copy once.
        return {"cfg": self.cfg, "model_path": self.model_path, "_model": None}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def score(self, text: str) -> float:
        """Probability of the positive label, 0..1."""
        return dict(predict(self.model, text, -1)).get(self.cfg.positive_label, 0.0)

    def reject_reason(self, score: float) -> str | None:
        """`quality_classifier:min_score` when a minimum is set and the score is below it, else None."""
        if self.cfg.min_score is not None and score < self.cfg.min_score:
            return REASON
        return None


class ClassifierStage(Stage):
    """The classifier stage (`pipeline.stage` protocol): `quality_score`, and the min-score rejection."""

    name = "classifier"

    def __init__(self, cfg: ClassifierConfig):
        self.classifier = QualityClassifier(cfg)

    def __call__(self, doc: Document) -> Document | Rejection:
        doc.quality_score = self.classifier.score(doc.text)
        reason = self.classifier.reject_reason(doc.quality_score)
        if reason is not None:
            return self.reject(doc, reason, f"{doc.quality_score:.4f} < {self.classifier.cfg.min_score}")
        return doc
