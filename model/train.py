"""The training loop: token files in, a run directory out.

    RUN/checkpoint.pt     model, optimizer, schedule position, data position, RNG (model/checkpoint.py)
    RUN/metrics.parquet   step, tokens, elapsed_s, lr, train_loss, val_loss, val_bpb
    RUN/samples.txt       text generated at each evaluation
    RUN/lineage.json      token files, dataset version, tokenizer, config, code version
    RUN/tokenizer.model   the tokenizer, so a run directory samples on its own

One flat loop, top to bottom: AdamW with warmup then cosine decay, gradient accumulation and
clipping, bf16 autocast on CUDA (fp32 on CPU), optional torch.compile, DDP under torchrun. On CPU,
with the same thread count, a run is deterministic, and a resumed run computes bit for bit what the
uninterrupted run would have.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import sentencepiece as spm
import torch
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from model.checkpoint import capture_rng, checkpoint_path, load_checkpoint, restore_rng, save_checkpoint
from model.config import TrainConfig
from model.data import RandomWindows, TokenSplits, eval_windows, to_device, window_batches
from model.ddp import Distributed
from model.gpt import GPT
from model.metrics import ConsoleTable, MetricsLog, MetricsRow
from model.plan import TOKENS_PER_PARAM, count_params, describe_estimate, flops_per_token, measure_peak_flops
from model.sample import TOKENIZER_NAME, sample_text
from warehouse.errors import RunExistsError, UsageError
from warehouse.lineage import git_commit

LINEAGE_NAME = "lineage.json"
SAMPLES_NAME = "samples.txt"

# Settings a resumed run may change: budgets and bookkeeping. Every other setting shapes the
# numbers the run computes, so a resumed run must keep it to continue the same run.
RESUMABLE = frozenset({
    "max_tokens", "max_seconds", "eval_interval", "eval_tokens", "log_interval", "checkpoint_interval",
    "sample_tokens", "sample_prompt", "device", "compile", "num_threads", "peak_flops",
})


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    steps: int
    tokens: int
    elapsed_s: float  # training time of the whole run, over all its resumed parts
    tokens_per_s: float  # throughput of this call
    train_loss: float | None
    val_loss: float | None
    val_bpb: float | None
    stopped_by: str  # "max_tokens", "max_seconds" or "stop_at_step"


@dataclass(frozen=True)
class Schedule:
    """Linear warmup over warmup_steps, then cosine decay to lr * min_lr_ratio over the budget.

    The decay runs on the fraction of the budget used — tokens, or seconds when the clock is the
    binding limit — so a run stopped by --max-seconds still ends at the bottom of its cosine."""

    lr: float
    min_lr_ratio: float
    warmup_steps: int
    max_tokens: int | None
    max_seconds: float | None

    def progress(self, tokens: int, elapsed_s: float) -> float:
        by_tokens = tokens / self.max_tokens if self.max_tokens else 0.0
        by_time = elapsed_s / self.max_seconds if self.max_seconds else 0.0
        return max(by_tokens, by_time)

    def lr_at(self, step: int, progress: float) -> float:
        warmup = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return self.lr * warmup * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * cosine)


def make_optimizer(model: GPT, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on the weight matrices only: decaying norm gains pulls them toward
    zero, and decaying the embedding shrinks rare tokens' rows, neither of which regularises."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or name == "embed.weight" else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel updates all parameters in one pass (CPU and CUDA alike).
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)


@torch.no_grad()
def evaluate(model: GPT, splits: TokenSplits, starts, batch_size: int, device: torch.device,
             autocast, dist: Distributed) -> float:
    """Mean validation loss (nats per token) over the given windows, each rank scoring its share."""
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=device)  # summed loss, token count
    for x, y in window_batches(splits.val.tokens, starts, model.cfg.block_size, batch_size):
        with autocast:
            _, loss = model(to_device(x, device), to_device(y, device))
        total += torch.stack([loss.double() * y.numel(), torch.tensor(y.numel(), dtype=torch.float64, device=device)])
    model.train(was_training)
    dist.sum(total)
    return (total[0] / total[1]).item()


def write_lineage(run_dir: Path, splits: TokenSplits, cfg: TrainConfig, model: GPT, device: torch.device,
                  world_size: int, resumed_at_step: int | None) -> None:
    """RUN/lineage.json: where the run's inputs came from. A resume appends to its `resumes` list."""
    path = run_dir / LINEAGE_NAME
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if resumed_at_step is not None and path.is_file():
        lineage = json.loads(path.read_text(encoding="utf-8"))
        lineage.setdefault("resumes", []).append({"step": resumed_at_step, "at": now, "git_commit": git_commit()})
    else:
        meta = splits.meta
        lineage = {
            "tokens_dir": str(splits.path.resolve()),
            "token_files": {name: str((splits.path / f"{name}.bin").resolve()) for name in ("train", "val")},
            "dataset": meta.get("dataset"),
            "dataset_version": meta.get("dataset_version"),
            "tokenizer_id": meta.get("tokenizer_id"),
            "tokens_meta": meta,
            "config": cfg.model_dump(mode="json"),
            "model": model.cfg.to_dict(),
            "n_params": model.n_params(),
            "git_commit": git_commit(),
            "torch_version": torch.__version__,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "world_size": world_size,
            "started_at": now,
        }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(lineage, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)


def _resumed_config(saved: TrainConfig, given: TrainConfig | None) -> TrainConfig:
    if given is None:
        return saved
    changed = sorted(k for k in TrainConfig.model_fields if getattr(saved, k) != getattr(given, k) and k not in RESUMABLE)
    if changed:
        raise UsageError(f"cannot resume with a different {', '.join(changed)}: the checkpoint was trained with "
                         + ", ".join(f"{k}={getattr(saved, k)!r}" for k in changed))
    return given


def train(
    tokens_dir: str | Path,
    out_dir: str | Path,
    cfg: TrainConfig | None = None,
    resume: bool = False,
    *,
    max_tokens: int | None = None,
    max_seconds: float | None = None,
    stop_at_step: int | None = None,
    console: Console | None = None,
) -> TrainResult:
    """Train on TOKENS_DIR's train.bin, evaluate on its val.bin, write the run to out_dir.

    cfg: None means the defaults, or on resume the checkpoint's own config. max_tokens / max_seconds
    override the config's budget; both count the whole run, across resumes. resume: continue from
    out_dir's checkpoint (a fresh start when it has none). stop_at_step: stop after that many optimizer
    steps with a checkpoint, as a preempted job would, without changing the schedule."""
    run_dir = Path(out_dir)
    state = None
    if resume and checkpoint_path(run_dir).is_file():
        state = load_checkpoint(run_dir)
        cfg = _resumed_config(TrainConfig.model_validate(state["config"]), cfg)
    elif checkpoint_path(run_dir).is_file():
        raise RunExistsError(f"{run_dir} already holds a run; pass resume=True (--resume) or another directory")
    cfg = cfg or TrainConfig()
    budget = {k: v for k, v in (("max_tokens", max_tokens), ("max_seconds", max_seconds)) if v is not None}
    if budget:
        cfg = TrainConfig.model_validate(cfg.model_dump() | budget)

    device_type = "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
    if device_type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but torch sees no CUDA device")
    dist = Distributed.from_env(device_type)
    device = torch.device(dist.device)
    console = console or Console(quiet=not dist.is_main)
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    try:
        if cfg.num_threads and device_type == "cpu":
            torch.set_num_threads(cfg.num_threads)
        if device_type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        else:
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 leftovers outside autocast
            torch.backends.cudnn.allow_tf32 = True
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device_type == "cuda")
        autocast = torch.autocast(device_type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()

        splits = TokenSplits.open(tokens_dir)
        gcfg = cfg.gpt_config(splits.vocab_size)
        T = gcfg.block_size
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        model = GPT(gcfg).to(device)
        if not cfg.max_tokens and not cfg.max_seconds:
            cfg = TrainConfig.model_validate(cfg.model_dump() | {"max_tokens": int(TOKENS_PER_PARAM * count_params(gcfg))})
        optimizer = make_optimizer(model, cfg)
        sampler = RandomWindows(splits.train.tokens, T, seed=cfg.seed)
        schedule = Schedule(cfg.lr, cfg.min_lr_ratio, cfg.warmup_steps, cfg.max_tokens, cfg.max_seconds)
        metrics = MetricsLog(run_dir)
        step, tokens, elapsed = 0, 0, 0.0
        if state is not None:
            if state["vocab_size"] != splits.vocab_size:
                raise UsageError(f"{tokens_dir}: vocabulary {splits.vocab_size}, the checkpoint's is {state['vocab_size']}")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            sampler.load_state_dict(state["data"])
            step, tokens, elapsed = state["schedule"]["step"], state["schedule"]["tokens"], state["schedule"]["elapsed_s"]
            rng = state["rng"]
            restore_rng(rng[dist.rank] if len(rng) == dist.world_size else rng[0])
            metrics.resume_from(step)
        else:
            torch.manual_seed(cfg.seed + dist.rank)  # each rank's own dropout stream
        run_model = torch.compile(model) if cfg.compile else model
        if dist.active:
            run_model = DistributedDataParallel(run_model, device_ids=[dist.local_rank] if device_type == "cuda" else None)

        tokenizer = None
        if dist.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_lineage(run_dir, splits, cfg, model, device, dist.world_size, step if state else None)
            if (splits.path / TOKENIZER_NAME).is_file():
                shutil.copyfile(splits.path / TOKENIZER_NAME, run_dir / TOKENIZER_NAME)
                tokenizer = spm.SentencePieceProcessor(model_file=str(run_dir / TOKENIZER_NAME))
        peak = cfg.peak_flops or measure_peak_flops(device, torch.bfloat16 if bf16 else torch.float32)
        tokens_per_step = cfg.batch_size * T * cfg.grad_accum * dist.world_size
        console.print(describe_estimate(gcfg, cfg.max_tokens, cfg.max_seconds, tokens_per_step, peak,
                                        assumed_mfu=0.4 if device_type == "cuda" else 0.5), soft_wrap=True)
        if state is not None:
            console.print(f"resuming {run_dir} at step {step:,} ({tokens:,} tokens, {elapsed:.1f}s)")

        val_starts = eval_windows(splits.val.n_tokens, T, cfg.eval_tokens)[dist.rank :: dist.world_size]
        table = ConsoleTable(console)
        fpt = flops_per_token(gcfg)

        def log(row: MetricsRow, tokens_per_s: float | None = None) -> None:
            metrics.append(row)
            table.print_row(row, tokens_per_s, None if tokens_per_s is None else tokens_per_s * fpt / dist.world_size / peak)

        def run_eval() -> tuple[float, float]:
            val_loss = evaluate(model, splits, val_starts, cfg.batch_size, device, autocast, dist)
            val_bpb = splits.bits_per_byte(val_loss)
            if dist.is_main and tokenizer is not None and cfg.sample_tokens:
                with autocast:
                    text = sample_text(model, tokenizer, cfg.sample_prompt, cfg.sample_tokens, 0.8, 200, cfg.seed + step)
                with open(run_dir / SAMPLES_NAME, "a", encoding="utf-8") as f:
                    f.write(f"--- step {step} (val loss {val_loss:.4f}, {val_bpb:.4f} bits/byte)\n{text}\n")
                console.print(text.strip()[:300], style="dim", highlight=False, markup=False)
            return val_loss, val_bpb

        def checkpoint() -> None:
            rng = dist.gather(capture_rng())  # a collective: every rank takes part
            if dist.is_main:
                save_checkpoint(run_dir, {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": {"step": step, "tokens": tokens, "elapsed_s": elapsed, **asdict(schedule)},
                    "data": sampler.state_dict(),
                    "rng": rng,
                    "config": cfg.model_dump(mode="json"),
                    "gpt_config": gcfg.to_dict(),
                    "vocab_size": splits.vocab_size,
                })
                metrics.write()

        start_step, start_tokens = step, tokens
        call_start = time.perf_counter()
        clock_start = call_start - elapsed  # the run's clock continues across resumes
        last_log_time, last_log_tokens = call_start, tokens
        train_loss = val_loss = val_bpb = None
        evaluated_step = -1
        lr = schedule.lr_at(step, schedule.progress(tokens, elapsed))
        model.train()
        while True:
            elapsed = time.perf_counter() - clock_start
            if cfg.max_seconds:
                elapsed = dist.from_main(elapsed)
            progress = schedule.progress(tokens, elapsed)
            if progress >= 1.0:
                stopped_by = "max_tokens" if cfg.max_tokens and tokens >= cfg.max_tokens else "max_seconds"
                break
            if stop_at_step is not None and step >= stop_at_step:
                stopped_by = "stop_at_step"
                break
            lr = schedule.lr_at(step, progress)
            for group in optimizer.param_groups:
                group["lr"] = lr

            loss_sum = torch.zeros((), device=device)
            for micro in range(cfg.grad_accum):
                x, y = sampler.next_batch(cfg.batch_size, dist.rank, dist.world_size)
                x, y = to_device(x, device), to_device(y, device)
                # DDP averages gradients across ranks on every backward; accumulating micro-batches
                # only need that once, on the last one.
                last = micro == cfg.grad_accum - 1
                with run_model.no_sync() if dist.active and not last else contextlib.nullcontext():
                    with autocast:
                        _, loss = run_model(x, y)
                    (loss / cfg.grad_accum).backward()
                loss_sum += loss.detach()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            tokens += tokens_per_step

            if step % cfg.log_interval == 0:
                train_loss = dist.sum(loss_sum).item() / (cfg.grad_accum * dist.world_size)
                now = time.perf_counter()
                rate = (tokens - last_log_tokens) / (now - last_log_time)
                last_log_time, last_log_tokens = now, tokens
                log(MetricsRow(step, tokens, now - clock_start, lr, train_loss=train_loss), rate)
            if step % cfg.eval_interval == 0:
                val_loss, val_bpb = run_eval()
                evaluated_step = step
                log(MetricsRow(step, tokens, time.perf_counter() - clock_start, lr, val_loss=val_loss, val_bpb=val_bpb))
                if dist.is_main:
                    metrics.write()
            if step % cfg.checkpoint_interval == 0:
                elapsed = time.perf_counter() - clock_start
                checkpoint()

        call_seconds = time.perf_counter() - call_start
        if step > start_step and train_loss is None:
            train_loss = dist.sum(loss_sum).item() / (cfg.grad_accum * dist.world_size)
        if evaluated_step != step:
            val_loss, val_bpb = run_eval()
            log(MetricsRow(step, tokens, elapsed, lr, val_loss=val_loss, val_bpb=val_bpb))
        checkpoint()
        console.print(
            f"stopped by {stopped_by} at step {step:,}: {tokens:,} tokens in {elapsed:.1f}s; "
            f"val loss {val_loss:.4f}, {val_bpb:.4f} bits/byte", soft_wrap=True
        )
        return TrainResult(
            run_dir=run_dir,
            steps=step,
            tokens=tokens,
            elapsed_s=elapsed,
            tokens_per_s=(tokens - start_tokens) / call_seconds if call_seconds > 0 else 0.0,
            train_loss=train_loss,
            val_loss=val_loss,
            val_bpb=val_bpb,
            stopped_by=stopped_by,
        )
    finally:
        torch.use_deterministic_algorithms(deterministic_before)
        dist.close()
