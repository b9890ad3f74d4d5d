"""fastText models, loaded once per path and process, and predicted with under numpy 2.

Both fastText users of the pipeline (language id, the quality classifier) go through here, so the
numpy-2 workaround and the one-copy-per-process cache live in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

from warehouse.errors import MissingFileError

LABEL_PREFIX = "__label__"

# Loading takes ~50 ms and a model is read-only, so every user in a process shares one copy;
# worker processes load their own.
_MODELS: dict[Path, object] = {}


def load_model(path: Path, missing_hint: str):
    """The fastText model at `path`; MissingFileError names the path and `missing_hint` says what to set."""
    path = Path(path)
    model = _MODELS.get(path)
    if model is None:
        if not path.is_file():
            raise MissingFileError(f"fastText model not found: {path}; {missing_hint}")
        import fasttext

        model = fasttext.load_model(os.fspath(path))
        _MODELS[path] = model
    return model


def one_line(text: str) -> str:
    """A document as the single line fastText reads (it stops at the first newline)."""
    return text.replace("\n", " ")


def predict(model, text: str, k: int = 1) -> list[tuple[str, float]]:
    """The k most probable labels of `text` (k=-1: all), as (label without __label__, probability).

    Calls the C++ binding `model.f.predict` directly: fasttext 0.9.3's Python `predict` ends with
    `np.array(probs, copy=False)`, which numpy 2 refuses ("Unable to avoid copy"). The binding
    returns [(probability, "__label__xx"), ...] and involves no numpy. The trailing "\\n" is what
    fasttext's own `predict` appends (the EOS token the model was trained with). The text goes in
    as UTF-8 bytes with unencodable characters (lone surrogates from broken input) replaced, so no
    input raises. fastText's softmax can exceed 1 by a rounding error: probabilities are capped at 1.
    """
    line = one_line(text) + "\n"
    predictions = model.f.predict(line.encode("utf-8", "replace"), k, 0.0, "replace")
    return [(label.removeprefix(LABEL_PREFIX), min(float(p), 1.0)) for p, label in predictions]
