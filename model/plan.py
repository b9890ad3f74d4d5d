"""Compute arithmetic for training: FLOPs, model FLOPs utilisation (MFU) and budget planning.

Training costs about 6 FLOPs per parameter per token (2 forward, 4 backward; Kaplan et al. 2020)
plus attention's score and mixing products, 12 * n_layer * n_embd * T per token (PaLM appendix B,
as nanoGPT counts it). Chinchilla (Hoffmann et al. 2022) found the compute-optimal model sees about
20 tokens per parameter, so a budget of C FLOPs buys N = sqrt(C / (6 * 20)) parameters and 20 N
tokens. `plan_budget` turns FLOPs, GPU-hours or dollars into that N, D and a concrete config.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import torch
import yaml

from model.gpt import PRESETS, GPTConfig
from warehouse.errors import UsageError

TOKENS_PER_PARAM = 20.0


def count_params(cfg: GPTConfig) -> int:
    """Parameters of GPT(cfg), the tied embedding/output matrix counted once."""
    d, hd = cfg.n_embd, cfg.head_dim
    per_layer = (
        d * (cfg.n_head + 2 * cfg.kv_heads) * hd  # q, k, v
        + d * d  # attention output projection
        + 3 * d * cfg.hidden  # SwiGLU: W1, W2, down projection
        + 2 * d  # two RMSNorm gains
    )
    return cfg.n_layer * per_layer + d + cfg.vocab_size * d


def flops_per_token(cfg: GPTConfig, seq_len: int | None = None) -> float:
    """Training FLOPs (forward + backward) per token at sequence length seq_len (default block_size)."""
    T = seq_len or cfg.block_size
    return 6.0 * count_params(cfg) + 12.0 * cfg.n_layer * cfg.n_embd * T


def mfu(tokens_per_s: float, cfg: GPTConfig, peak_flops: float, seq_len: int | None = None) -> float:
    """Model FLOPs utilisation: achieved training FLOP/s as a fraction of the device's peak."""
    return tokens_per_s * flops_per_token(cfg, seq_len) / peak_flops


def measure_peak_flops(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, seconds: float = 0.5) -> float:
    """Matrix-multiply FLOP/s this device reaches, with the current thread count: the ceiling MFU is
    reported against when the user gives no peak. The best of many timed products, because on a
    shared machine the slow ones measure the neighbours. On CPU the matrices are 512 wide, small
    enough to stay in cache as a small model's matrices do (at 1024 and above this CPU's fp32 rate
    halves, bound by memory). Uses its own generator, so the global random state is untouched."""
    device = torch.device(device)
    n, per_timing = (8192, 10) if device.type == "cuda" else (512, 1)
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    a @ b  # warm-up: kernel selection and first touch of memory
    best, deadline = math.inf, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(per_timing):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, (time.perf_counter() - start) / per_timing)
    return 2.0 * n**3 / best


@dataclass(frozen=True)
class Plan:
    """What a compute budget buys. n_params_target / n_tokens_target are the Chinchilla optimum;
    config is the nearest shape we would build, n_tokens the tokens that spend the budget on it."""

    budget_flops: float
    n_params_target: float
    n_tokens_target: float
    config: GPTConfig
    n_params: int
    n_tokens: int

    @property
    def tokens_per_param(self) -> float:
        return self.n_tokens / self.n_params


def budget_to_flops(
    *,
    flops: float | None = None,
    gpu_hours: float | None = None,
    dollars: float | None = None,
    price_per_gpu_hour: float | None = None,
    peak_flops: float | None = None,
    mfu: float = 0.4,
) -> float:
    """Exactly one of flops, gpu_hours, dollars (with price_per_gpu_hour) -> training FLOPs.
    Hours become FLOPs at peak_flops * mfu (FLOP/s actually achieved)."""
    if sum(x is not None for x in (flops, gpu_hours, dollars)) != 1:
        raise UsageError("give exactly one budget: flops, gpu_hours or dollars")
    if flops is not None:
        if flops <= 0:
            raise UsageError(f"budget of {flops} FLOPs is not positive")
        return float(flops)
    if dollars is not None:
        if not price_per_gpu_hour or price_per_gpu_hour <= 0:
            raise UsageError("a budget in dollars needs a positive price_per_gpu_hour")
        gpu_hours = dollars / price_per_gpu_hour
    if not peak_flops or peak_flops <= 0 or not 0 < mfu <= 1:
        raise UsageError("a budget in hours or dollars needs peak_flops > 0 and 0 < mfu <= 1")
    if gpu_hours <= 0:
        raise UsageError(f"budget of {gpu_hours} GPU-hours is not positive")
    return gpu_hours * 3600.0 * peak_flops * mfu


def _width_step(n_embd: int) -> int:
    """Widths we build: multiples of 64 up to 1024, of 128 up to 2048, of 256 beyond — the
    granularity shrinks relative to the width, and wide matrices tile better on round sizes."""
    return 64 if n_embd <= 1024 else 128 if n_embd <= 2048 else 256


def shape_for_params(n_params: float, base: GPTConfig) -> GPTConfig:
    """The shape nearest n_params with 64-wide heads and a width of about 64 per layer (GPT-2
    small's 768 / 12; loss is flat over a wide range of aspect ratios, Kaplan et al. 2020).
    Vocabulary, context and other fields come from base."""
    best, best_score = base, math.inf
    for n_layer in range(1, 97):
        for n_embd in range(64 * math.ceil(n_layer / 2), 128 * n_layer + 1, 64):  # 32 to 128 wide per layer
            if n_embd % _width_step(n_embd):
                continue
            aspect = abs(math.log2(n_embd / (64 * n_layer)))
            cfg = replace(base, n_layer=n_layer, n_embd=n_embd, n_head=n_embd // 64, n_kv_head=None, mlp_hidden=None)
            score = abs(math.log(count_params(cfg) / n_params)) + 0.01 * aspect
            if score < best_score:
                best, best_score = cfg, score
    return best


def plan_budget(budget_flops: float, base: GPTConfig | None = None, tokens_per_param: float = TOKENS_PER_PARAM) -> Plan:
    """Chinchilla sizing: C = 6 N D with D = tokens_per_param * N gives N = sqrt(C / (6 k)).
    The returned config is the buildable shape nearest N; n_tokens spends the whole budget on it
    (attention FLOPs included), so it may differ a little from tokens_per_param * n_params."""
    base = base or GPTConfig()
    n_target = math.sqrt(budget_flops / (6.0 * tokens_per_param))
    cfg = shape_for_params(n_target, base)
    return Plan(
        budget_flops=budget_flops,
        n_params_target=n_target,
        n_tokens_target=tokens_per_param * n_target,
        config=cfg,
        n_params=count_params(cfg),
        n_tokens=int(budget_flops / flops_per_token(cfg)),
    )


def describe_estimate(cfg: GPTConfig, max_tokens: int | None, max_seconds: float | None, tokens_per_step: int,
                      peak_flops: float, assumed_mfu: float) -> str:
    """One paragraph, printed before training: model size, cost per token, and what the budget buys."""
    n, fpt = count_params(cfg), flops_per_token(cfg)
    lines = [
        f"model: {n / 1e6:.2f}M parameters ({(n - cfg.vocab_size * cfg.n_embd) / 1e6:.2f}M without the embedding), "
        f"{cfg.n_layer} layers x {cfg.n_embd} wide, context {cfg.block_size}; {fpt / 1e6:.1f} MFLOP per training token",
        f"device peak {peak_flops / 1e9:.1f} GFLOP/s; at {assumed_mfu:.0%} MFU about "
        f"{peak_flops * assumed_mfu / fpt:,.0f} tokens/s, {tokens_per_step:,} tokens per step",
    ]
    if max_tokens:
        lines.append(
            f"budget: {max_tokens:,} tokens = {max_tokens * fpt:.3g} FLOPs "
            f"({max_tokens / n:.1f} tokens per parameter; compute-optimal is {TOKENS_PER_PARAM:.0f}), "
            f"about {max_tokens * fpt / (peak_flops * assumed_mfu):,.0f} s"
        )
    if max_seconds:
        tokens = max_seconds * peak_flops * assumed_mfu / fpt
        lines.append(f"budget: {max_seconds:,.0f} s = about {tokens:,.0f} tokens ({tokens / n:.1f} per parameter)")
    return "\n".join(lines)


def plan_config(plan: Plan, preset_name: str = "124M") -> dict:
    """A TrainConfig for the plan, as plain data (write it as YAML and pass it to --config): the
    preset the shape differs least from, the fields that differ, and the token budget."""
    base = PRESETS[preset_name]
    overrides = {k: v for k, v in plan.config.to_dict().items() if k != "vocab_size" and getattr(base, k) != v}
    return {"preset": preset_name, "model": overrides, "max_tokens": plan.n_tokens}


def plan_report(plan: Plan, peak_flops: float | None = None, mfu: float = 0.4, price_per_gpu_hour: float | None = None) -> str:
    """What `tokenmill plan` prints: the budget, the compute-optimal size and tokens, the config."""
    cfg = plan.config
    lines = [
        f"budget: {plan.budget_flops:.3g} FLOPs",
        f"compute-optimal (Chinchilla, {TOKENS_PER_PARAM:.0f} tokens/parameter): "
        f"{plan.n_params_target / 1e6:,.1f}M parameters, {plan.n_tokens_target / 1e9:,.3f}B tokens",
        f"nearest shape: {cfg.n_layer} layers x {cfg.n_embd} wide, {cfg.n_head} heads, context {cfg.block_size}, "
        f"vocabulary {cfg.vocab_size}: {plan.n_params / 1e6:,.1f}M parameters, "
        f"{plan.n_tokens / 1e9:,.3f}B tokens ({plan.tokens_per_param:.1f} per parameter), "
        f"{flops_per_token(cfg) / 1e6:,.1f} MFLOP per token",
    ]
    if peak_flops:
        hours = plan.budget_flops / (peak_flops * mfu) / 3600
        cost = f", ${hours * price_per_gpu_hour:,.0f} at ${price_per_gpu_hour}/GPU-hour" if price_per_gpu_hour else ""
        lines.append(f"time: {hours:,.1f} GPU-hours at {peak_flops / 1e12:,.0f} TFLOP/s peak and {mfu:.0%} MFU{cost}")
    lines += ["", "# config (save as plan.yaml, then: tokenmill train TOKENS --out RUN --config plan.yaml)",
              yaml.safe_dump(plan_config(plan), sort_keys=False).rstrip()]
    return "\n".join(lines)


# --- A time budget on this device -> a whole training config (`tokenmill train --max-seconds S`). ---

# Fraction of peak FLOP/s a run reaches, for sizing only (the run itself is stopped by the clock):
# bf16 GPT training reaches 40-50 % on current GPUs (nanoGPT, issue #9's H200 table); small fp32
# models on one CPU core reached 46-52 % of the measured 512x512 matmul rate (bench/results/train.md).
EXPECTED_MFU = {"cuda": 0.4, "cpu": 0.5}
# Tokens per parameter: Chinchilla's 20 holds from ~1e18 FLOPs up. Far below, the best model sees
# fewer: on tinyshakespeare in 180 s on one core (~1e13 FLOPs) 3 layers x 128 (0.70 M parameters,
# 4.2 tokens each) beat 4 and 5 layers. Log-linear in between.
SHORT_RUN = (1e13, 4.0)
LONG_RUN = (1e18, TOKENS_PER_PARAM)
# Share of the budget kept for evaluation, sampling and checkpoints (they count toward --max-seconds).
OVERHEAD = 0.05
# Longest context whose attention FLOPs stay within this share of 6N: GPT-2 small at 1024 (15 %),
# the 180-s CPU model at 128 (14 %). Longer contexts buy little for a model that small.
ATTENTION_SHARE = 0.2
MICRO_BATCH_TOKENS = {"cuda": 32_768, "cpu": 1 << 30}  # per forward; more is gradient accumulation


def tokens_per_param(budget_flops: float) -> float:
    (c0, k0), (c1, k1) = SHORT_RUN, LONG_RUN
    t = min(1.0, max(0.0, math.log(budget_flops / c0) / math.log(c1 / c0)))
    return math.exp(math.log(k0) + t * math.log(k1 / k0))


@dataclass(frozen=True)
class RunPlan:
    """What `plan_run` chose: the TrainConfig fields, and why, line by line."""

    fields: dict
    config: GPTConfig
    reasons: list[str]


def plan_run(max_seconds: float, peak_flops: float, device_type: str, vocab_size: int, train_tokens: int,
             world_size: int = 1) -> RunPlan:
    """Shape, batch and learning rate for max_seconds of training on world_size devices of peak_flops
    each (the batch is split over the processes; batch_size is per process)."""
    mfu_ = EXPECTED_MFU[device_type]
    budget = max_seconds * peak_flops * mfu_ * (1 - OVERHEAD) * world_size
    k = tokens_per_param(budget)
    n_target = math.sqrt(budget / (6.0 * k))
    base = GPTConfig(vocab_size=64 * -(-vocab_size // 64), block_size=1024)
    cfg = shape_for_params(n_target, base)
    block = 1024
    while block > 64 and 12 * cfg.n_layer * cfg.n_embd * block > ATTENTION_SHARE * 6 * count_params(cfg):
        block //= 2
    cfg = replace(cfg, block_size=block)
    n_tokens = budget / flops_per_token(cfg)
    # Tokens per step ~ sqrt(tokens): 2,048 for a few million tokens (the 180-s CPU run), 64 k for
    # a few billion (GPT-2 small's hour on a GPU); powers of two, at least one sequence.
    step_tokens = max(block * world_size, 2 ** math.ceil(math.log2(math.sqrt(n_tokens))))
    batch = step_tokens // block
    per_process = max(1, batch // world_size)
    batch = per_process * world_size
    micro = max(1, min(per_process, MICRO_BATCH_TOKENS[device_type] // block))
    while per_process % micro:
        micro -= 1
    steps = max(1, int(n_tokens // (batch * block)))
    lr = 3e-3 * min(1.0, 128 / cfg.n_embd)  # 3e-3 at 128 wide (measured), 5e-4 at 768 (GPT-3's 6e-4)
    fields = {
        "preset": "small",
        "model": {"n_layer": cfg.n_layer, "n_head": cfg.n_head, "n_embd": cfg.n_embd, "block_size": block},
        "batch_size": micro,
        "grad_accum": per_process // micro,
        "lr": lr,
        "warmup_steps": min(2000, max(10, round(0.03 * steps))),
        "eval_interval": max(1, steps // 4),
        "log_interval": max(1, steps // 100),
        "eval_tokens": int(min(1_000_000, max(16 * block, n_tokens // 30))),
    }
    n = count_params(cfg)
    reasons = [
        f"plan for {max_seconds:,.0f} s on {world_size} x {device_type}: {peak_flops / 1e9:,.1f} GFLOP/s peak x {mfu_:.0%} expected MFU "
        f"x {1 - OVERHEAD:.0%} (evaluation and checkpoints take the rest) = {budget:.3g} FLOPs",
        f"a budget this size trains best at about {k:.1f} tokens per parameter (20 from 1e18 FLOPs up): "
        f"{n_target / 1e6:.2f}M parameters, nearest shape {cfg.n_layer} layers x {cfg.n_embd} wide, "
        f"{cfg.n_head} heads of 64 ({n / 1e6:.2f}M with the {vocab_size:,}-token embedding)",
        f"context {block}: the longest whose attention costs at most {ATTENTION_SHARE:.0%} of the weights' FLOPs",
        f"about {n_tokens / 1e6:,.1f}M tokens ({n_tokens / max(train_tokens, 1):.1f} passes over the {train_tokens:,} "
        f"training tokens) in ~{steps:,} steps of {batch * block:,} tokens (batch {batch}"
        + (f" = {world_size} processes x " if world_size > 1 else " = ") + f"{micro} x {per_process // micro} accumulated"
        + f"), peak learning rate {lr:.2g}, {fields['warmup_steps']} warmup steps",
    ]
    return RunPlan(fields, cfg, reasons)
