"""The tokenizer's defaults, in one place: the CLI, the flows and the library functions read these.

The vocabulary is sized to the training text unless given: 2 ** round(log2(sqrt(bytes))), between
1,024 and 32,768. Both ends of that rule were measured or published: on tinyshakespeare (1 MB) a
1,024-token vocabulary beat 512, 2,048 and 8,000 at equal compute (an 8,000-token head costs more
FLOPs per token than a small model's whole body, and most of its rows see a handful of examples);
on ~100 MB the rule gives 8,192, the size this project used for every corpus before.
"""

from __future__ import annotations

import math

MODEL_TYPE = "bpe"
VAL_FRACTION = 0.1  # nanoGPT's split of tinyshakespeare
SAMPLE_BYTES = 100_000_000  # text the tokenizer is trained on at most
MIN_AUTO_VOCAB, MAX_AUTO_VOCAB = 1_024, 32_768


def auto_vocab_size(train_bytes: int) -> int:
    """The vocabulary for a training split of `train_bytes` bytes of text (see the module docstring)."""
    size = 2 ** round(math.log2(math.sqrt(max(train_bytes, 1))))
    return min(MAX_AUTO_VOCAB, max(MIN_AUTO_VOCAB, size))
