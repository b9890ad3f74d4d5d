"""Build a token directory from a source: sample, train SentencePiece, pack, commit atomically.

A token directory holds tokenizer.model, tokenizer.vocab, train.bin/.idx, val.bin/.idx and
meta.json. meta.json carries a content hash of the inputs and settings: when it matches, a re-run
returns at once and touches nothing. A new build is written to a staging directory beside the
target and swapped in at the end, so a crash leaves the previous directory (or none), never a mix.
meta.json holds no timestamps or durations, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sentencepiece as spm
from tqdm import tqdm

from tokenizer.pack import pack
from tokenizer.sample import BoundedSample
from tokenizer import defaults
from tokenizer.codec import NEWLINE
from tokenizer.sources import DatasetSource, TextSource, TokenizeError
from tokenizer.tokenfile import TokenFile, TokenFileError, dtype_for_vocab
from tokenizer.tokensdir import FILES, META_NAME, SPLITS, TOKENIZER_NAME, VOCAB_NAME, load_codec
from tokenizer.train import BOS_ID, EOS_ID, PAD_ID, UNK_ID, TokenizerSettings, train_tokenizer, vocab_lines
from warehouse.layout import is_remote, local_mirror

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# Bumped when a change in this package changes the bytes it writes for the same inputs.
CODE_VERSION = 1


@dataclass
class TokenizeResult:
    out: Path
    tokenizer_id: str
    meta: dict
    reused: bool  # True: the directory already matched these inputs and settings; nothing was written
    seconds: dict[str, float] = field(default_factory=dict)  # time per step of this run

    def summary(self) -> str:
        m = self.meta
        if self.reused:
            return f"{self.out}: up to date ({self.tokenizer_id}); nothing to do"
        lines = [f"{self.out} ({self.tokenizer_id}, {m['model_type']}, vocabulary {m['vocab_size']})"]
        for split in SPLITS:
            lines.append(
                f"  {split}: {m[f'{split}_docs']:,} docs, {m[f'{split}_tokens']:,} tokens, "
                f"{m[f'{split}_bytes']:,} bytes of text ({m[f'{split}_bytes'] / max(m[f'{split}_tokens'], 1):.2f} bytes/token)"
            )
        lines.append("  " + ", ".join(f"{step} {s:.1f}s" for step, s in self.seconds.items()))
        return "\n".join(lines)


def vocab_label(vocab_size: int) -> str:
    return f"{vocab_size // 1000}k" if vocab_size % 1000 == 0 else str(vocab_size)


def build_token_dir(
    source: DatasetSource | TextSource,
    out: Path | None,
    settings: TokenizerSettings,
    sample_bytes: int = defaults.SAMPLE_BYTES,
    workers: int | None = None,
    progress: bool | None = None,
) -> TokenizeResult:
    """Tokenize `source` into `out` (for a dataset, default: its warehouse tokens/<tokenizer-id>/).

    `progress`: show progress bars (None: only on a terminal).
    """
    if sample_bytes <= 0:
        raise TokenizeError(f"the tokenizer sample must be positive, got {sample_bytes} bytes")
    fingerprint = {
        "format_version": FORMAT_VERSION,
        "code_version": CODE_VERSION,
        "source": source.fingerprint(),
        "trainer": settings.trainer_options(),
        "sample_bytes": sample_bytes,
    }
    content_hash = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()
    tokenizer_id = _tokenizer_id(source, settings, content_hash)
    out = Path(out) if out is not None else _warehouse_dir(source, tokenizer_id)

    existing = _matching_meta(out, content_hash)
    if existing is not None:
        log.info("%s already holds these tokens (%s): nothing to do", out, tokenizer_id)
        return TokenizeResult(out, tokenizer_id, existing, reused=True)
    _check_replaceable(out)

    seconds: dict[str, float] = {}
    disable = None if progress is None else not progress
    started = time.perf_counter()
    source.survey()
    if source.train_bytes == 0:
        raise TokenizeError("the training split holds no text to train the tokenizer on")
    rate = min(1.0, sample_bytes / source.train_bytes)
    seconds["survey"] = time.perf_counter() - started

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.staging-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        started = time.perf_counter()
        budget = min(sample_bytes, source.train_bytes)
        log.info("training a %s tokenizer (vocabulary %d) on %.1f MB", settings.model_type, settings.vocab_size, budget / 1e6)
        with tqdm(total=budget, unit="B", unit_scale=True, desc="tokenizer sample", disable=disable) as bar:
            sample = BoundedSample(source.training_texts(rate), sample_bytes, progress=bar)
            model = train_tokenizer(sample, settings)
        seconds["train_tokenizer"] = time.perf_counter() - started
        (staging / TOKENIZER_NAME).write_bytes(model)
        sp = load_codec(model_proto=model).sp
        (staging / VOCAB_NAME).write_text("\n".join(vocab_lines(sp)) + "\n", encoding="utf-8")

        started = time.perf_counter()
        total = source.train_bytes + source.val_bytes
        log.info("encoding %.1f MB of text into %s", total / 1e6, out)
        with tqdm(total=total, unit="B", unit_scale=True, desc="encode + pack", disable=disable) as bar:
            stats = pack(source.encode_jobs(), model, staging, sp.get_piece_size(), EOS_ID, workers, progress=bar)
        seconds["pack"] = time.perf_counter() - started

        meta = {
            "format_version": FORMAT_VERSION,
            "tokenizer_id": tokenizer_id,
            "content_hash": content_hash,
            **source.describe(),
            **_tokenizer_fields(sp, settings),
            "sample": {"bytes": sample.n_bytes, "sentences": sample.n_sentences, "rate": rate},
            "settings": {**fingerprint["trainer"], "val_fraction": source.val_fraction, "sample_bytes": sample_bytes},
            **{f"{split}_{what}": getattr(stats.splits[split], what) for split in SPLITS for what in ("docs", "tokens", "bytes")},
        }
        meta_json = json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        (staging / META_NAME).write_text(meta_json, encoding="utf-8")
        _swap_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return TokenizeResult(out, tokenizer_id, meta, reused=False, seconds=seconds)


def _tokenizer_fields(sp: spm.SentencePieceProcessor, settings: TokenizerSettings) -> dict:
    return {
        "model_type": settings.model_type,
        "vocab_size": sp.get_piece_size(),
        "token_dtype": dtype_for_vocab(sp.get_piece_size()).name,
        "unk_id": UNK_ID,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "pad_id": PAD_ID,
        "newline_id": sp.piece_to_id(NEWLINE),
    }


def _tokenizer_id(source, settings: TokenizerSettings, content_hash: str) -> str:
    """e.g. "bpe-8k-v3" for a dataset's docs version 3; text files: a content hash replaces the version."""
    suffix = f"v{source.version}" if isinstance(source, DatasetSource) else content_hash[:8]
    return f"{settings.model_type}-{vocab_label(settings.vocab_size)}-{suffix}"


def _warehouse_dir(source, tokenizer_id: str) -> Path:
    if not isinstance(source, DatasetSource):
        raise TokenizeError("text input needs --out")
    where = source.paths.tokens(tokenizer_id)
    if is_remote(where):  # memory-mapped files must be local: a local folder stands in for the URL
        log.info("token files are memory-mapped: %s is kept in %s", where, local_mirror(where))
    return Path(local_mirror(where))


def _matching_meta(out: Path, content_hash: str) -> dict | None:
    """meta.json of `out` when it was built from the same content and settings and is complete."""
    try:
        meta = json.loads((out / META_NAME).read_text(encoding="utf-8"))
        if meta.get("content_hash") != content_hash or not all((out / name).is_file() for name in FILES):
            return None
        for split in SPLITS:
            if TokenFile.open(out / f"{split}.bin").n_tokens != meta[f"{split}_tokens"]:
                return None
        return meta
    except (OSError, ValueError, KeyError, TokenFileError):
        return None


def _check_replaceable(out: Path) -> None:
    """Refuse to replace a directory that holds anything but a previous build's files."""
    if out.exists():
        foreign = sorted(set(os.listdir(out)) - set(FILES)) if out.is_dir() else [out.name]
        if foreign:
            listed = ", ".join(foreign[:3])
            raise TokenizeError(f"{out} holds files that are not tokenmill token files ({listed}); choose another --out")


def _swap_into_place(staging: Path, out: Path) -> None:
    if not out.exists():
        os.rename(staging, out)
        return
    previous = out.parent / f".{out.name}.previous-{uuid.uuid4().hex[:8]}"
    os.rename(out, previous)
    os.rename(staging, out)
    shutil.rmtree(previous)
