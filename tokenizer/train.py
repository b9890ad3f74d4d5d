"""Train a SentencePiece model that keeps text intact, from any stream of training sentences.

Settings chosen so that every UTF-8 text survives encode -> decode (see tokenizer.codec):
identity normalisation (no NFKC, no whitespace clean-up, no dummy prefix space), byte fallback
(a character outside the vocabulary becomes its UTF-8 bytes, never <unk>), whitespace-only pieces
allowed (indentation), and "\\n" as a user-defined piece. Digits are split one by one, as in
LLaMA, so numbers do not eat vocabulary.

Ids: 0 <unk>, 1 <s> (BOS), 2 </s> (EOS, ends every document in the token files), 3 <pad>,
4 "\\n", then 256 byte pieces <0x00>..<0xFF>, then the learned pieces.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import sentencepiece as spm

from tokenizer import defaults
from warehouse.errors import TokenmillError

MODEL_TYPES = ("bpe", "unigram")
UNK_ID, BOS_ID, EOS_ID, PAD_ID = 0, 1, 2, 3
MAX_SENTENCE_BYTES = 16_384
# SentencePiece's unigram EM splits the sentences over its threads and sums per thread, so the
# model depends on the thread count (BPE does not, but the count is written into every model
# file). A fixed count gives the same tokenizer.model bytes on a laptop and on a 64-core server.
TRAIN_THREADS = 16
# Specials and bytes take 261 ids; a vocabulary must leave room for the characters it keeps.
MIN_VOCAB_SIZE = 320


class TokenizerTrainingError(TokenmillError, ValueError):
    """SentencePiece could not train with these settings on this sample (message says why)."""


@dataclass(frozen=True)
class TokenizerSettings:
    vocab_size: int
    model_type: str = defaults.MODEL_TYPE
    # Characters rarer than this share of the sample are left to byte fallback.
    character_coverage: float = 0.9995

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise ValueError(f"model type must be one of {', '.join(MODEL_TYPES)}, got {self.model_type!r}")
        if self.vocab_size < MIN_VOCAB_SIZE:
            raise ValueError(f"vocabulary size must be at least {MIN_VOCAB_SIZE}, got {self.vocab_size}")

    def trainer_options(self) -> dict:
        """Every SentencePiece option used, as recorded in meta.json."""
        return {
            **asdict(self),
            "byte_fallback": True,
            "normalization_rule_name": "identity",
            "add_dummy_prefix": False,
            "remove_extra_whitespaces": False,
            "split_digits": True,
            "allow_whitespace_only_pieces": True,
            "user_defined_symbols": ["\n"],
            "unk_id": UNK_ID,
            "bos_id": BOS_ID,
            "eos_id": EOS_ID,
            "pad_id": PAD_ID,
            "max_sentence_length": MAX_SENTENCE_BYTES,
            # The sample is already drawn (deterministically, bounded in bytes) by tokenizer.sample:
            # SentencePiece must take all of it, in order, rather than re-sample with its own RNG.
            "input_sentence_size": 0,
            "shuffle_input_sentence": False,
            "num_threads": TRAIN_THREADS,
        }


def train_tokenizer(sentences: Iterable[str], settings: TokenizerSettings) -> bytes:
    """Train on the given sentences (each at most MAX_SENTENCE_BYTES of UTF-8); returns the model file bytes."""
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=model, minloglevel=1, **settings.trainer_options()
        )
    except RuntimeError as exc:
        hint = ""
        if "Vocabulary size" in str(exc):
            hint = " (use a smaller --vocab-size, or give more text)"
        raise TokenizerTrainingError(f"SentencePiece training failed: {str(exc).strip()}{hint}") from None
    return model.getvalue()


def vocab_lines(sp: spm.SentencePieceProcessor) -> list[str]:
    """SentencePiece's .vocab format (`piece<TAB>score`, line i = id i), with backslash, tab, CR and
    newline in pieces written as \\\\, \\t, \\r, \\n so that the "\\n" piece stays on one line."""
    escapes = str.maketrans({"\\": "\\\\", "\t": "\\t", "\r": "\\r", "\n": "\\n"})
    return [f"{sp.id_to_piece(i).translate(escapes)}\t{sp.get_score(i):g}" for i in range(sp.get_piece_size())]
