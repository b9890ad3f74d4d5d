"""One model and its optimizer, stepped on fixed random batches: what the training benchmarks
time (bench_train on a CPU core, bench_gpu on a GPU). Speed does not depend on the text.

Both models take the same step: bf16 autocast where asked, forward, backward, gradient clipping
at 1.0, fused AdamW. Built once and timed many times, so compilation happens in the warm-up.
"""

from __future__ import annotations

import contextlib
import time

import torch

from bench.reference_gpt import ReferenceConfig, ReferenceGPT
from model.gpt import GPT, GPTConfig
from model.plan import flops_per_token

KINDS = ("tokenmill", "reference")


def build(kind: str, shape: dict) -> torch.nn.Module:
    """shape: vocab_size, block_size, n_layer, n_head, n_embd (GPT-2 small, nanoGPT's baby GPT, ...)."""
    torch.manual_seed(0)
    return GPT(GPTConfig(**shape)) if kind == "tokenmill" else ReferenceGPT(ReferenceConfig(**shape))


def model_flops_per_token(model: torch.nn.Module) -> float:
    return flops_per_token(model.cfg) if isinstance(model, GPT) else model.flops_per_token()


class Stepper:
    def __init__(self, kind: str, shape: dict, device: torch.device | str = "cpu", compiled: bool = False,
                 bf16: bool = False, compile_backend: str = "inductor"):
        self.device = torch.device(device)
        self.model = build(kind, shape).to(self.device)
        self.step_model = torch.compile(self.model, backend=compile_backend) if compiled else self.model
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.1, fused=True)
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        self.vocab, self.context = shape["vocab_size"], shape["block_size"]
        self.batches: dict[int, list] = {}
        self.steps_done = 0

    def _batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        if batch_size not in self.batches:
            generator = torch.Generator().manual_seed(1)
            windows = [torch.randint(self.vocab, (batch_size, self.context + 1), generator=generator) for _ in range(4)]
            self.batches[batch_size] = [(w[:, :-1].contiguous().to(self.device), w[:, 1:].contiguous().to(self.device))
                                        for w in windows]
        cycle = self.batches[batch_size]
        return cycle[self.steps_done % len(cycle)]

    def step(self, batch_size: int) -> None:
        x, y = self._batch(batch_size)
        with self.autocast:
            _, loss = self.step_model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps_done += 1

    def tokens_per_second(self, steps: int, batch_size: int) -> float:
        """Timed between device synchronisations, so queued GPU work is inside the interval."""
        self._sync()
        start = time.perf_counter()
        for _ in range(steps):
            self.step(batch_size)
        self._sync()
        return steps * batch_size * self.context / (time.perf_counter() - start)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
