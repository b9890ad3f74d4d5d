"""Token files of an ablation: one tokenizer shared by every variant, and each variant's splits.

    OUT/tokenizer.model               trained on the union of the variants' training documents
    OUT/data/<variant>/train.bin      the variant's training documents
    OUT/data/<variant>/val.bin        the --eval text: what the trainer's validation curve scores,
                                      so every variant's curve is on the same text
    OUT/data/<variant>/heldout.bin    the variant's own validation documents
    OUT/data/<variant>/meta.json      what the trainer reads (sizes, vocabulary), and the variant

Documents are cut at line breaks into pieces of about `split_chars` characters (a small build
has too few documents to split by document); a piece is validation when the hash of (document id,
piece number) falls under the validation fraction, the rule `tokenmill tokenize` applies to
documents. A piece has the same split in every variant, so no model is scored on text another
variant's model trained on. Consecutive pieces of one split stay one document.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import sentencepiece as spm

from tokenizer.tokensdir import TOKENIZER_NAME
from pipeline.textchunks import line_chunks
from tokenizer.codec import Codec
from tokenizer.sample import VAL_SALT, BoundedSample, key_hash, threshold
from tokenizer.tokenfile import TokenFileWriter
from tokenizer.train import EOS_ID, TokenizerSettings, train_tokenizer

ENCODE_BATCH = 256  # documents per SentencePiece call
HELDOUT_NAME = "heldout.bin"


@dataclass(frozen=True)
class SplitSize:
    docs: int
    tokens: int
    bytes: int


def split_docs(docs: pl.DataFrame, fraction: float, split_chars: int) -> tuple[list[str], list[str]]:
    """(training texts, validation texts) of a frame of (id, text); see the module doc."""
    below = threshold(fraction)
    splits: dict[bool, list[str]] = {False: [], True: []}
    for doc_id, text in zip(docs["id"].to_list(), docs["text"].to_list()):
        run: list[str] = []
        run_is_val = False
        for i, piece in enumerate(line_chunks(text, split_chars)):
            is_val = key_hash(VAL_SALT, f"{doc_id}:{i}") < below
            if run and is_val != run_is_val:
                splits[run_is_val].append("".join(run))
                run = []
            run_is_val = is_val
            run.append(piece)
        if run:
            splits[run_is_val].append("".join(run))
    return splits[False], splits[True]


def train_shared_tokenizer(train_sets: Iterable[pl.DataFrame], fraction: float, split_chars: int, vocab_size: int,
                           sample_bytes: int, out: Path) -> spm.SentencePieceProcessor:
    """One tokenizer for all variants, trained on the union of their training text (in id order)."""
    union = pl.concat(list(train_sets)).unique("id").sort("id")
    train_texts, _ = split_docs(union, fraction, split_chars)
    model = train_tokenizer(BoundedSample(train_texts, sample_bytes), TokenizerSettings(vocab_size=vocab_size))
    out.mkdir(parents=True, exist_ok=True)
    (out / TOKENIZER_NAME).write_bytes(model)
    return spm.SentencePieceProcessor(model_proto=model)


def write_tokens(path: Path, texts: list[str], codec: Codec) -> SplitSize:
    """Encode documents into a token file (+ .idx), each ending with EOS."""
    vocab = codec.sp.get_piece_size()
    with TokenFileWriter(path, vocab, EOS_ID) as writer:
        for i in range(0, len(texts), ENCODE_BATCH):
            flat, lengths = codec.encode_documents(texts[i : i + ENCODE_BATCH])
            writer.add_documents(flat, lengths)
    return SplitSize(len(texts), writer.n_tokens, sum(len(t.encode("utf-8")) for t in texts))


def write_variant(directory: Path, tokenizer_dir: Path, train: list[str], heldout: list[str],
                  eval_tokens: Path, eval_size: SplitSize, codec: Codec, describe: dict) -> dict:
    """A tokens directory the trainer reads, plus the variant's held-out split; returns its meta."""
    directory.mkdir(parents=True, exist_ok=True)
    train_size = write_tokens(directory / "train.bin", train, codec)
    heldout_size = write_tokens(directory / HELDOUT_NAME, heldout, codec)
    for suffix in (".bin", ".idx"):
        shutil.copyfile(eval_tokens.with_suffix(suffix), directory / f"val{suffix}")
    shutil.copyfile(tokenizer_dir / TOKENIZER_NAME, directory / TOKENIZER_NAME)
    meta = {
        **describe,
        "vocab_size": codec.sp.get_piece_size(),
        "eos_id": EOS_ID,
        **{f"train_{k}": v for k, v in vars(train_size).items()},
        **{f"val_{k}": v for k, v in vars(eval_size).items()},
        **{f"heldout_{k}": v for k, v in vars(heldout_size).items()},
    }
    (directory / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return meta
