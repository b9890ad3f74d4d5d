"""Training throughput on a GPU: tokenmill's model beside nanoGPT's (bench/reference_gpt.py).

GPT-2 small shape (12 layers, 12 heads, 768 wide, context 1024, vocabulary 50,304), random tokens,
both models taking the same step (bf16 autocast, fused AdamW, gradient clipping), eager and
torch.compile'd, at batch 16 and 64, all in one run. For each batch size and mode both models warm
up (compilation happens there, and is timed), then timed rounds alternate between them; the table
gives median tokens/s, MFU against the device's bf16 peak, and the median per-round ratio with its
range. Targets (issue #9, on an H100/H200): compiled >= 1.15x the reference at batch 16, >= 50 % MFU
at the best batch size, eager >= 1.0x.

    python -m bench.bench_gpu            # on a CUDA machine: writes bench/results/gpu.md (~5 min)
    python -m bench.bench_gpu --smoke    # every step on the CPU at toy size (the test suite runs it)
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from bench.common import publish
from bench.stepper import KINDS, Stepper, model_flops_per_token
from model.plan import measure_peak_flops

RESULTS = Path(__file__).resolve().parent / "results" / "gpu.md"
GPT2_SMALL = dict(vocab_size=50_304, block_size=1024, n_layer=12, n_head=12, n_embd=768)
TOY = dict(vocab_size=256, block_size=32, n_layer=2, n_head=2, n_embd=64)
# Dense bf16 tensor-core peaks from the vendor's data sheets (FLOP/s); other devices are measured.
SPEC_PEAK = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}
# Stop starting new cells past this many seconds, so the run stays inside its GPU time.
TIME_LIMIT_S = 330


def spec_peak(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, peak in SPEC_PEAK.items():
            if key in name:
                return peak, f"{name}, bf16 spec {peak / 1e12:,.1f} TFLOP/s"
    peak = measure_peak_flops(device, torch.bfloat16)
    return peak, f"measured bf16 matmul peak {peak / 1e12:,.2f} TFLOP/s"


def measure_cell(shape: dict, device: torch.device, compiled: bool, batch: int, warmup: int, rounds: int,
                 steps: int, backend: str) -> dict:
    """Both models at one batch size and mode: warm-up (compile) seconds, tokens/s per round."""
    steppers, compile_s = {}, {}
    for kind in KINDS:
        stepper = Stepper(kind, shape, device, compiled, bf16=True, compile_backend=backend)
        started = time.perf_counter()
        stepper.tokens_per_second(warmup, batch)
        compile_s[kind] = time.perf_counter() - started
        steppers[kind] = stepper
    rates = {kind: [] for kind in KINDS}
    for _ in range(rounds):
        for kind in KINDS:
            rates[kind].append(steppers[kind].tokens_per_second(steps, batch))
    flops = {kind: model_flops_per_token(steppers[kind].model) for kind in KINDS}
    peak_mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    del steppers
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    return {"rates": rates, "flops": flops, "warmup_s": compile_s, "peak_mem_gib": peak_mem}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="every step on the CPU at toy size (seconds)")
    parser.add_argument("--batches", type=int, nargs="+", default=None, help="batch sizes (default 16 64; smoke 2 4)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating timed rounds (default 5; smoke 1)")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round (default 10; smoke 1)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the table goes")
    args = parser.parse_args(argv)
    smoke = args.smoke
    if not smoke and not torch.cuda.is_available():
        parser.error("no CUDA device: run on a GPU machine, or pass --smoke")
    device = torch.device("cpu") if smoke else torch.device("cuda", 0)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        # A second batch size recompiles for its static shape instead of switching to dynamic shapes.
        torch._dynamo.config.automatic_dynamic_shapes = False
    shape = TOY if smoke else GPT2_SMALL
    batches = args.batches or ([2, 4] if smoke else [16, 64])
    rounds, steps, warmup = args.rounds or (1 if smoke else 5), args.steps or (1 if smoke else 10), 2 if smoke else 15
    # The smoke run traces with dynamo but skips inductor's code generation (minutes on a CPU).
    backend = "eager" if smoke else "inductor"
    peak, peak_note = spec_peak(device)

    started = time.perf_counter()
    lines_cells, skipped = [], []
    for batch in batches:
        for compiled in (True, False):
            mode = "compiled" if compiled else "eager"
            if time.perf_counter() - started > TIME_LIMIT_S:
                skipped.append(f"{mode} batch {batch}")
                continue
            cell = measure_cell(shape, device, compiled, batch, warmup, rounds, steps, backend)
            r, f = cell["rates"], cell["flops"]
            ratios = [a / b for a, b in zip(r["tokenmill"], r["reference"])]
            tm, ref = statistics.median(r["tokenmill"]), statistics.median(r["reference"])
            mem = "" if cell["peak_mem_gib"] is None else f"{cell['peak_mem_gib']:.1f}"
            lines_cells.append(
                f"| {mode} | {batch} | {tm:,.0f} | {tm * f['tokenmill'] / peak:.1%} | {ref:,.0f} | "
                f"{ref * f['reference'] / peak:.1%} | {statistics.median(ratios):.2f}x ({min(ratios):.2f}–{max(ratios):.2f}) | "
                f"{cell['warmup_s']['tokenmill']:.0f} / {cell['warmup_s']['reference']:.0f} | {mem} |"
            )
    total = time.perf_counter() - started
    where = "CPU (smoke run: toy shape, eager-backend compile; not a measurement)" if smoke else peak_note
    lines = [
        "# Training throughput on a GPU: tokenmill vs nanoGPT's model",
        "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {where}; torch {torch.__version__}, "
        f"CUDA {torch.version.cuda or 'none'}; bf16 autocast, fused AdamW, gradient clipping, TF32 on.",
        f"Shape: {shape['n_layer']} layers, {shape['n_head']} heads, {shape['n_embd']} wide, context {shape['block_size']}, "
        f"vocabulary {shape['vocab_size']:,}; random tokens. Per cell: {warmup} warm-up steps (compilation included), then "
        f"{rounds} rounds of {steps} steps alternating tokenmill / reference, GPU-synchronised; ratio per round.",
        f"Command: `python -m bench.bench_gpu{' --smoke' if smoke else ''}`; whole run {total:.0f} s.",
        "",
        "| mode | batch | tokenmill tokens/s | MFU | reference tokens/s | MFU | tokenmill / reference | warm-up s (tm / ref) | peak GiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *lines_cells,
        "",
        "tokenmill: RMSNorm, rotary positions (bf16), SDPA causal attention, SwiGLU, the output head and loss "
        "a slice of rows at a time (no full fp32 logits). Reference (nanoGPT's model.py on its flash path): "
        "learned positions, LayerNorm, GELU MLP, SDPA causal attention, F.cross_entropy over the full logits. "
        "MFU: each model's own FLOPs per token (6 N + 12 L d T) x tokens/s over the peak above.",
    ]
    if skipped:
        lines.append(f"Not run (past the {TIME_LIMIT_S} s limit): {', '.join(skipped)}.")
    return publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
