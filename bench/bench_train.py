"""Training throughput per core: tokenmill's model beside nanoGPT's (bench/reference_gpt.py).

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
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

from bench.common import cpu_model, publish
from bench.stepper import Stepper, build, model_flops_per_token
from model.plan import measure_peak_flops

RESULTS = Path(__file__).resolve().parent / "results" / "train.md"
BATCH, CONTEXT, VOCAB = 12, 64, 65
BABY = dict(vocab_size=VOCAB, block_size=CONTEXT, n_layer=4, n_head=4, n_embd=128)


# Kernels whose time is fixed by the shape: the matrix products (the same FLOPs in both models, to 4 %)
# and SDPA's attention kernels (both models use them).
MATMUL_OPS = ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm")
ATTENTION_OPS = ("aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_flash_attention_for_cpu_backward")


def kernel_seconds_per_step(trainer: Stepper, steps: int) -> dict[str, float]:
    """Seconds per step spent in matrix products and in SDPA's attention kernels (torch.profiler).
    These are long kernels, so the profiler's per-call overhead barely touches them."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.step(BATCH)
    self_us = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    return {
        "matmul": sum(self_us.get(op, 0.0) for op in MATMUL_OPS) / 1e6 / steps,
        "attention": sum(self_us.get(op, 0.0) for op in ATTENTION_OPS) / 1e6 / steps,
    }


def ceiling_lines(rates: dict[str, list[float]], split: dict[str, float]) -> list[str]:
    """How fast tokenmill could train if everything but its matmuls and attention kernels were free,
    against the reference's measured rate: the bound on the eager ratio at this shape on this CPU."""
    reference_step = BATCH * CONTEXT / statistics.median(rates["reference eager"])
    tokenmill_step = BATCH * CONTEXT / statistics.median(rates["tokenmill eager"])
    floor = split["matmul"] + split["attention"]
    return [
        "",
        "Where tokenmill's eager step goes (torch.profiler, same run): "
        f"{tokenmill_step * 1e3:.1f} ms per step, of which matrix products {split['matmul'] * 1e3:.1f} ms "
        f"and SDPA's attention kernels {split['attention'] * 1e3:.1f} ms. "
        f"If every other operation (norms, rotary, SwiGLU gate, loss, optimizer, autograd) took no time at all, "
        f"tokenmill would train at most {reference_step / floor:.2f}x the reference's measured rate "
        f"({reference_step / split['matmul']:.2f}x with attention free as well). "
        f"A 1.3x ratio leaves {max(0.0, reference_step / 1.3 - floor) * 1e3:.1f} ms per step for all the rest, which takes "
        f"{(tokenmill_step - floor) * 1e3:.1f} ms now. "
        "Both models are matmul-bound at this shape on one CPU core, with the same FLOPs per token to 4 %.",
    ]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 short pairs, eager only: a smoke run")
    parser.add_argument("--pairs", type=int, default=None, help="alternating measurement pairs (default 5, quick 3)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per measurement (default 100, quick 20)")
    parser.add_argument("--core", type=int, default=0, help="the CPU core to pin to")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    args = parser.parse_args(argv)
    pairs = args.pairs or (3 if args.quick else 5)
    steps = args.steps or (20 if args.quick else 100)
    compiled = not (args.quick or args.no_compile)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.core})
    torch.set_num_threads(1)

    # Every variant is built and warmed up (compiled, where it is) first; then the timed runs
    # alternate between them, pair after pair, so drift in the machine's speed hits all alike.
    variants = ["tokenmill eager", "reference eager"] + (["tokenmill compiled", "reference compiled"] if compiled else [])
    trainers = {name: Stepper(name.split()[0], BABY, "cpu", name.endswith("compiled")) for name in variants}
    for trainer in trainers.values():
        trainer.tokens_per_second(10 if args.quick else 30, BATCH)
    peak = measure_peak_flops("cpu", torch.float32)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(pairs):
        for name, trainer in trainers.items():
            rates[name].append(trainer.tokens_per_second(steps, BATCH))

    split = kernel_seconds_per_step(trainers["tokenmill eager"], steps)
    comparisons = [("tokenmill eager", "reference eager")]
    if compiled:
        comparisons += [("tokenmill compiled", "reference eager"), ("tokenmill compiled", "reference compiled")]
    flops = {kind: model_flops_per_token(build(kind, BABY)) for kind in ("tokenmill", "reference")}
    lines = [
        "# Training throughput per core: tokenmill GPT vs nanoGPT's model",
        "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {cpu_model()}, {os.cpu_count()} cores, one used "
        f"(core {args.core}, 1 thread); torch {torch.__version__}, fp32; fp32 matmul peak measured here "
        f"{peak / 1e9:.0f} GFLOP/s (best 512x512 product).",
        f"Shape: nanoGPT's baby GPT — 4 layers, 4 heads, 128 wide, context {CONTEXT}, batch {BATCH}, vocabulary {VOCAB}. "
        f"{pairs} rounds, each timing {steps} steps of every variant in turn; ratios are per round.",
        f"Command: `python -m bench.bench_train{''.join(' ' + a for a in (argv if argv is not None else sys.argv[1:]))}`",
        "",
        "| variant | tokens/s (median) | min–max | MFU |",
        "|---|---:|---:|---:|",
    ]
    for name in variants:
        r = rates[name]
        mfu = statistics.median(r) * flops[name.split()[0]] / peak
        lines.append(f"| {name} | {statistics.median(r):,.0f} | {min(r):,.0f}–{max(r):,.0f} | {mfu:.0%} |")
    lines += ["", "| comparison | ratio (median) | min–max |", "|---|---:|---:|"]
    for a, b in comparisons:
        ratios = [x / y for x, y in zip(rates[a], rates[b])]
        lines.append(f"| {a} / {b} | {statistics.median(ratios):.2f}x | {min(ratios):.2f}–{max(ratios):.2f} |")
    lines += [
        "",
        f"Training FLOPs per token: tokenmill {flops['tokenmill'] / 1e6:.2f} M, reference {flops['reference'] / 1e6:.2f} M. "
        "tokenmill: RMSNorm, rotary positions, SDPA causal attention, SwiGLU (hidden 8/3 d rounded to 64). "
        "Reference: nanoGPT's model on its flash path: learned positions, LayerNorm, GELU MLP (4 d), SDPA causal attention. "
        "Both: fused AdamW, gradient clipping at 1.0.",
    ] + ceiling_lines(rates, split)
    report = "\n".join(lines) + "\n"
    return publish(report, RESULTS)


if __name__ == "__main__":
    main()
