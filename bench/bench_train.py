"""Training throughput per core: tokenmill's model beside a plain GPT-2-style reference.

Both train at nanoGPT's CPU "baby GPT" shape (4 layers, 4 heads, 128 wide, context 64, batch 12,
a 65-character vocabulary) with the same optimizer step (fused AdamW, gradient clipping), in one
process pinned to one core with one thread. Runs alternate, tokenmill then reference, and the table
reports the median ratio with its range, as the project's benchmark method asks (ratios from one run, never across runs).

    python -m bench.bench_train [--quick] [--pairs N] [--steps N] [--core C] [--compile]

Writes bench/results/train.md and prints it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from bench.reference_gpt import ReferenceConfig, ReferenceGPT
from model.gpt import GPT, GPTConfig
from model.plan import measure_peak_flops

RESULTS = Path(__file__).resolve().parent / "results" / "train.md"
BATCH, CONTEXT, VOCAB = 12, 64, 65
BABY = dict(vocab_size=VOCAB, block_size=CONTEXT, n_layer=4, n_head=4, n_embd=128)


def build(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return GPT(GPTConfig(**BABY)) if kind == "tokenmill" else ReferenceGPT(ReferenceConfig(**BABY))


def train_flops_per_token(model: torch.nn.Module) -> float:
    """6 N (the tied matrix counted once, position embeddings not: they are a lookup) plus attention."""
    n = sum(p.numel() for name, p in model.named_parameters() if "wpe" not in name)
    return 6.0 * n + 12.0 * BABY["n_layer"] * BABY["n_embd"] * CONTEXT


def tokens_per_second(kind: str, steps: int, warmup: int, compile_model: bool) -> float:
    """Train a fresh model for warmup + steps optimizer steps; tokens/s over the timed steps."""
    model = build(kind)
    step_model = torch.compile(model) if compile_model else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1, fused=True)
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randint(VOCAB, (BATCH, CONTEXT + 1), generator=generator) for _ in range(16)]
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        batch = batches[i % len(batches)]
        _, loss = step_model(batch[:, :-1], batch[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps * BATCH * CONTEXT / (time.perf_counter() - start)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 short pairs, for a smoke run")
    parser.add_argument("--pairs", type=int, default=None, help="alternating measurement pairs (default 5, quick 3)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per measurement (default 150, quick 30)")
    parser.add_argument("--core", type=int, default=0, help="the CPU core to pin to")
    parser.add_argument("--compile", action="store_true", help="also measure both models under torch.compile")
    args = parser.parse_args(argv)
    pairs = args.pairs or (3 if args.quick else 5)
    steps = args.steps or (30 if args.quick else 150)
    warmup = 5 if args.quick else 20

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    torch.set_num_threads(1)

    variants = [("eager", False)] + ([("compiled", True)] if args.compile else [])
    rows = []
    peak_before = measure_peak_flops("cpu", torch.float32)
    for label, compiled in variants:
        rates: dict[str, list[float]] = {"tokenmill": [], "reference": []}
        for _ in range(pairs):
            for kind in ("tokenmill", "reference"):
                rates[kind].append(tokens_per_second(kind, steps, warmup, compiled))
        ratios = [a / b for a, b in zip(rates["tokenmill"], rates["reference"])]
        rows.append((label, rates, ratios))
    peak = (peak_before + measure_peak_flops("cpu", torch.float32)) / 2

    flops = {kind: train_flops_per_token(build(kind)) for kind in ("tokenmill", "reference")}
    lines = [
        "# Training throughput per core: tokenmill GPT vs plain reference",
        "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {cpu_model()}, {os.cpu_count()} cores, one core used "
        f"(core {args.core}, 1 thread); torch {torch.__version__}, fp32",
        f"Shape: nanoGPT's baby GPT — 4 layers, 4 heads, 128 wide, context {CONTEXT}, batch {BATCH}, vocabulary {VOCAB}; "
        f"{pairs} alternating pairs of {steps} timed steps after {warmup} warm-up steps; "
        f"matmul peak measured here {peak / 1e9:.0f} GFLOP/s.",
        f"Command: `python -m bench.bench_train{' --quick' if args.quick else ''}{' --compile' if args.compile else ''}`",
        "",
        "| mode | tokenmill tokens/s (median) | reference tokens/s (median) | ratio median | ratio min–max | tokenmill MFU | reference MFU |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, rates, ratios in rows:
        tm, ref = statistics.median(rates["tokenmill"]), statistics.median(rates["reference"])
        lines.append(
            f"| {label} | {tm:,.0f} | {ref:,.0f} | {statistics.median(ratios):.2f}x | {min(ratios):.2f}–{max(ratios):.2f} "
            f"| {tm * flops['tokenmill'] / peak:.0%} | {ref * flops['reference'] / peak:.0%} |"
        )
    lines += [
        "",
        f"Training FLOPs per token: tokenmill {flops['tokenmill'] / 1e6:.2f} M, reference {flops['reference'] / 1e6:.2f} M. "
        "tokenmill: RMSNorm, rotary positions, SDPA causal attention, SwiGLU (hidden 8/3 d rounded to 64). "
        "Reference: learned positions, LayerNorm, GELU MLP (4 d), hand-written masked attention (as nanoGPT).",
    ]
    report = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report, encoding="utf-8")
    print(report)
    return report


if __name__ == "__main__":
    main()
