"""Text from a trained model: `sample_run(RUN, prompt)` loads the run's checkpoint and tokenizer
and continues the prompt. Sampling draws from its own generator, never the global one, so
sampling during training leaves a run's random stream — and its exact resumability — untouched.
Prompts are encoded by the token directory's codec, exactly as the training text was packed."""

from __future__ import annotations

from pathlib import Path

import torch

from model.checkpoint import load_checkpoint
from model.device import pick_device
from model.gpt import GPT, GPTConfig
from tokenizer.codec import Codec
from tokenizer.tokensdir import TOKENIZER_NAME, load_codec
from warehouse.errors import UsageError


@torch.no_grad()
def generate(
    model: GPT,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    vocab_size: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """idx: (B, T) prompt ids -> (B, T + max_new_tokens). temperature 0 is greedy; top_k keeps the k
    likeliest tokens; vocab_size (the tokenizer's) rules out the padding rows of a padded vocabulary.
    The context is cropped to the model's block_size as it grows."""
    was_training = model.training
    model.eval()
    for _ in range(max_new_tokens):
        logits, _ = model(idx[:, -model.cfg.block_size :])
        logits = logits[:, -1, :].float()
        if vocab_size is not None:
            logits[:, vocab_size:] = -float("inf")
        if temperature == 0:
            next_id = logits.argmax(dim=-1, keepdim=True)
        else:
            logits = logits / temperature
            if top_k is not None and top_k < logits.size(-1):
                kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, -float("inf"))
            next_id = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
        idx = torch.cat((idx, next_id), dim=1)
    model.train(was_training)
    return idx


def sample_text(
    model: GPT,
    codec: Codec,
    prompt: str,
    max_new_tokens: int,
    temperature: float,
    top_k: int | None,
    seed: int,
) -> str:
    """The prompt and its continuation, decoded. An empty prompt starts from the end-of-document id."""
    device = next(model.parameters()).device
    ids = codec.encode(prompt) or [codec.sp.eos_id()]
    generator = torch.Generator(device=device).manual_seed(seed)
    out = generate(
        model, torch.tensor([ids], device=device), max_new_tokens, temperature, top_k,
        vocab_size=codec.sp.get_piece_size(), generator=generator,
    )
    # Byte-fallback pieces that end mid-character decode to U+FFFD rather than failing.
    return codec.decode(out[0].tolist())


def load_run(run_dir: str | Path, device: str | torch.device = "auto") -> tuple[GPT, Codec]:
    """The model of RUN/checkpoint.pt (in eval mode, on `device`: auto/cpu/cuda, or a torch.device)
    and the codec of the tokenizer the run was trained with."""
    run_dir = Path(run_dir)
    device = device if isinstance(device, torch.device) else pick_device(device)
    codec = load_codec(run_dir / TOKENIZER_NAME)
    state = load_checkpoint(run_dir, map_location=device)
    model = GPT(GPTConfig(**state["gpt_config"])).to(device)
    model.load_state_dict(state["model"])
    model.eval()
    return model, codec


def sample_run(
    run_dir: str | Path,
    prompt: str = "",
    temperature: float = 0.8,
    top_k: int | None = 200,
    max_new_tokens: int = 200,
    seed: int = 0,
    device: str = "auto",
) -> str:
    """Continue prompt with the model trained in run_dir; returns the prompt plus the new text."""
    if temperature < 0:
        raise UsageError(f"temperature {temperature} is negative")
    if top_k is not None and top_k <= 0:
        raise UsageError(f"top_k {top_k} is not positive")
    model, tokenizer = load_run(run_dir, device)
    return sample_text(model, tokenizer, prompt, max_new_tokens, temperature, top_k, seed)
