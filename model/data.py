"""Batches from a tokens directory's token files (tokenizer/tokensdir.py opens and checks them).

Training draws windows at random offsets from a seeded generator whose state is the data
position: saved in a checkpoint, it makes a resumed run read exactly the batches the uninterrupted
run would have read. With several processes every rank draws the same global batch's offsets and
keeps its own rows, so the data position is one generator state whatever the number of ranks.

Validation reads fixed, non-overlapping windows, so every evaluation scores the same tokens and
consumes no randomness.
"""

from __future__ import annotations

import numpy as np
import torch

from tokenizer.tokensdir import TokensDirError


def _gather(tokens: np.ndarray, starts: np.ndarray, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    # One fancy-indexing read copies the windows out of the memmap. Holding a single memmap is fine:
    # pages it touches count toward RSS but are file-backed and reclaimable, which is what nanoGPT's
    # "re-create the memmap every batch" note works around.
    windows = torch.from_numpy(tokens[starts[:, None] + np.arange(block_size + 1)].astype(np.int64))
    return windows[:, :-1], windows[:, 1:]


class RandomWindows:
    """Training batches: windows of block_size + 1 tokens at uniformly random offsets."""

    def __init__(self, tokens: np.ndarray, block_size: int, seed: int):
        if len(tokens) <= block_size:
            raise TokensDirError(f"{len(tokens)} training tokens is not more than one block of {block_size}")
        self.tokens, self.block_size = tokens, block_size
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self, batch_size: int, rank: int = 0, world_size: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y), each (batch_size, block_size) int64: this rank's rows of the global batch."""
        high = len(self.tokens) - self.block_size
        starts = torch.randint(high, (batch_size * world_size,), generator=self.generator).numpy()
        return _gather(self.tokens, starts[rank * batch_size : (rank + 1) * batch_size], self.block_size)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


def eval_windows(n_tokens: int, block_size: int, max_tokens: int) -> np.ndarray:
    """Start offsets of non-overlapping validation windows: every token after the first is predicted
    once (a final partial window is left out). When that is more than max_tokens, an evenly spaced
    subset, so a capped evaluation still covers the whole split."""
    n_windows = (n_tokens - 1) // block_size
    if n_windows == 0:
        raise TokensDirError(f"{n_tokens} validation tokens do not fill one window of {block_size}")
    keep = max(1, min(n_windows, max_tokens // block_size))
    picked = np.linspace(0, n_windows - 1, keep).round().astype(np.int64)
    return np.unique(picked) * block_size


def window_batches(tokens: np.ndarray, starts: np.ndarray, block_size: int, batch_size: int):
    """Yield (x, y) batches of the given windows, in order."""
    for i in range(0, len(starts), batch_size):
        yield _gather(tokens, starts[i : i + batch_size], block_size)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host tensor -> device; on CUDA through pinned memory so the copy overlaps compute."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t
