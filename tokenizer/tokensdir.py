"""A token directory, the one owner of its format: what files it holds, what meta.json must say,
how its tokenizer is loaded, and the codec every encoder of text for it uses.

    tokenizer.model  tokenizer.vocab    the SentencePiece model (tokenizer/train.py's settings)
    train.bin .idx   val.bin .idx       token files (tokenizer/tokenfile.py)
    meta.json                           counts per split, special ids, settings, content hash

Packing (tokenizer/pack.py) and the model (training, evaluation, sampling) both encode through
`load_codec`, so a prompt is encoded exactly as the corpus was — "▁" included.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm

from tokenizer.codec import Codec
from tokenizer.tokenfile import TokenFile
from warehouse.errors import MissingFileError, TokenmillError

TOKENIZER_NAME = "tokenizer.model"
VOCAB_NAME = "tokenizer.vocab"
META_NAME = "meta.json"
SPLITS = ("train", "val")
FILES = (TOKENIZER_NAME, VOCAB_NAME, "train.bin", "train.idx", "val.bin", "val.idx", META_NAME)
# meta.json keys a reader relies on (the writer, tokenizer/build.py, writes these and more).
REQUIRED_META = ("train_bytes", "val_bytes", "train_tokens", "val_tokens", "vocab_size", "eos_id")


class TokensDirError(TokenmillError, ValueError):
    """A tokens directory that is missing files or whose files disagree with its meta.json."""


def load_codec(model_file: str | Path | None = None, *, model_proto: bytes | None = None) -> Codec:
    """The lossless codec of a SentencePiece model file (or its bytes)."""
    if model_proto is not None:
        return Codec(spm.SentencePieceProcessor(model_proto=model_proto))
    path = Path(model_file)
    if not path.is_file():
        raise MissingFileError(f"no {path.name} in {path.parent}: run `tokenmill tokenize` first")
    return Codec(spm.SentencePieceProcessor(model_file=str(path)))


@dataclass(frozen=True)
class TokensDir:
    """The train and validation token files of one tokens directory, and its meta.json."""

    path: Path
    train: TokenFile
    val: TokenFile
    meta: dict

    @classmethod
    def open(cls, tokens_dir: str | Path) -> "TokensDir":
        path = Path(tokens_dir)
        meta_path = path / META_NAME
        if not meta_path.is_file():
            raise TokensDirError(f"{path}: no {META_NAME} (is this a tokens directory?)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        missing = [k for k in REQUIRED_META if k not in meta]
        if missing:
            raise TokensDirError(f"{meta_path}: missing {', '.join(missing)}")
        train, val = TokenFile.open(path / "train.bin"), TokenFile.open(path / "val.bin")
        for name, tf in (("train", train), ("val", val)):
            if tf.n_tokens != meta[f"{name}_tokens"] or tf.vocab_size != meta["vocab_size"]:
                raise TokensDirError(
                    f"{tf.path}: {tf.n_tokens} tokens, vocabulary {tf.vocab_size}; {META_NAME} says "
                    f"{meta[f'{name}_tokens']} tokens, vocabulary {meta['vocab_size']}"
                )
        if val.n_tokens < 2 or meta["val_bytes"] <= 0:
            raise TokensDirError(f"{path}: the validation split is empty")
        return cls(path, train, val, meta)

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def tokenizer_path(self) -> Path:
        return self.path / TOKENIZER_NAME

    def codec(self) -> Codec:
        return load_codec(self.tokenizer_path)

    def bits_per_byte(self, val_loss_nats: float) -> float:
        """Validation loss per token (nats) -> bits per byte of the original text, comparable across
        tokenizers: the split's total information divided by its size in bytes."""
        return val_loss_nats * self.meta["val_tokens"] / (math.log(2) * self.meta["val_bytes"])
