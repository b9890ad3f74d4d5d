"""Plain functions behind `tokenmill tokenize` and the tokenize step of the train-after-build flow.

    tokenmill tokenize (--dataset DIR/NAME | --text FILE...) [--out DIR] [--vocab-size N]
                       [--model-type bpe|unigram] [--val-fraction F] [--sample-bytes N] [--workers N]

Defaults live in tokenizer/defaults.py; vocab_size None sizes the vocabulary to the training text.
Errors a user can fix (missing dataset, non-UTF-8 file, vocabulary too small for the sample, ...)
are raised as `TokenizeError` / `TokenizerTrainingError` (both TokenmillError, the one-line errors the CLI prints) with a one-line message.
"""

from __future__ import annotations

from pathlib import Path

from tokenizer import defaults
from tokenizer.build import TokenizeResult, build_token_dir
from tokenizer.sources import DatasetSource, TextSource, TokenizeError
from tokenizer.train import TokenizerSettings


def _settings(source: DatasetSource | TextSource, vocab_size: int | None, model_type: str) -> TokenizerSettings:
    if vocab_size is None:
        source.survey()  # the split sizes the vocabulary (cached: the build does not survey again)
        vocab_size = defaults.auto_vocab_size(source.train_bytes)
    try:
        return TokenizerSettings(vocab_size=vocab_size, model_type=model_type)
    except ValueError as exc:
        raise TokenizeError(str(exc)) from None


def tokenize_dataset(
    dataset: str,
    out: Path | None = None,
    vocab_size: int | None = None,
    model_type: str = defaults.MODEL_TYPE,
    val_fraction: float = defaults.VAL_FRACTION,
    sample_bytes: int = defaults.SAMPLE_BYTES,
    workers: int | None = None,
    version: int | None = None,
    progress: bool | None = None,
) -> TokenizeResult:
    """Tokenize the docs table of `dataset` ("DIR/NAME") at `version` (default: the current one).

    `out` defaults to the warehouse's <DIR>/<NAME>/tokens/<tokenizer-id>/, e.g. tokens/bpe-8k-v3.
    """
    source = DatasetSource(dataset, val_fraction, version=version)
    return build_token_dir(source, out, _settings(source, vocab_size, model_type), sample_bytes, workers, progress)


def tokenize_text(
    files: list[Path],
    out: Path,
    vocab_size: int | None = None,
    model_type: str = defaults.MODEL_TYPE,
    val_fraction: float = defaults.VAL_FRACTION,
    sample_bytes: int = defaults.SAMPLE_BYTES,
    workers: int | None = None,
    progress: bool | None = None,
) -> TokenizeResult:
    """Tokenize plain UTF-8 text files; the last `val_fraction` of their text is validation."""
    if out is None:
        raise TokenizeError("text input needs --out")
    source = TextSource(files, val_fraction)
    return build_token_dir(source, out, _settings(source, vocab_size, model_type), sample_bytes, workers, progress)


def tokenize_command(
    dataset: str | None,
    text: list[Path] | None,
    out: Path | None,
    vocab_size: int | None = None,
    model_type: str = defaults.MODEL_TYPE,
    val_fraction: float = defaults.VAL_FRACTION,
    sample_bytes: int = defaults.SAMPLE_BYTES,
    workers: int | None = None,
) -> TokenizeResult:
    """The CLI command: exactly one of `dataset` and `text`. Print `result.summary()` after."""
    if (dataset is None) == (not text):
        raise TokenizeError("give exactly one of --dataset DIR/NAME and --text FILE...")
    if dataset is not None:
        return tokenize_dataset(dataset, out, vocab_size, model_type, val_fraction, sample_bytes, workers)
    return tokenize_text(list(text), out, vocab_size, model_type, val_fraction, sample_bytes, workers)
