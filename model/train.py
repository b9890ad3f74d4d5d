"""The training loop: token files in, a run directory out.

    RUN/checkpoint.pt     model, optimizer, schedule position, data position, RNG (model/checkpoint.py)
    RUN/metrics.parquet   step, tokens, elapsed_s, lr, losses, val bits/byte, tokens/s, MFU
    RUN/samples.txt       text generated at each evaluation
    RUN/lineage.json      token files, dataset version, tokenizer, config, code version
    RUN/tokenizer.model   the tokenizer, so a run directory samples on its own

As nanoGPT's train.py reads: `setup` builds everything, then one flat loop calls `train_step`,
`evaluate_and_sample` and `save` in turn. AdamW (fused) with warmup then cosine decay, gradient
accumulation and clipping, bf16 autocast on CUDA (fp32 on CPU), optional torch.compile, DDP under
torchrun. The device is model/device.py's choice. The step never waits for the GPU: losses stay on
the device and are read (one sync) only at log intervals. On CPU, with the same thread count, a
run is deterministic, and a resumed run computes bit for bit what the uninterrupted run would have.

--max-seconds counts the loop's wall clock: every step (torch.compile's first steps included),
evaluations, samples and checkpoints. Setup before the first step (loading, measuring the device's
peak, planning) does not count.
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

import numpy as np
import torch
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

from model import device as devices
from model.checkpoint import capture_rng, checkpoint_path, load_checkpoint, restore_rng, save_checkpoint
from model.config import TrainConfig
from model.data import RandomWindows, eval_windows, to_device, window_batches
from model.ddp import Distributed
from model.gpt import GPT, GPTConfig
from model.metrics import ConsoleTable, MetricsLog, MetricsRow
from model.plan import EXPECTED_MFU, TOKENS_PER_PARAM, count_params, describe_estimate, flops_per_token, measure_peak_flops, plan_run
from model.sample import sample_text
from tokenizer.codec import Codec
from tokenizer.tokensdir import TOKENIZER_NAME, TokensDir, load_codec
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


@dataclass
class Run:
    """Everything one training run holds, made by `setup`; the loop advances step/tokens/elapsed."""

    cfg: TrainConfig
    gcfg: GPTConfig
    run_dir: Path
    device: torch.device
    dist: Distributed
    autocast: contextlib.AbstractContextManager
    data: TokensDir
    model: GPT
    step_model: torch.nn.Module  # the model as the step calls it: compiled and/or DDP-wrapped
    optimizer: torch.optim.Optimizer
    sampler: RandomWindows
    schedule: Schedule
    metrics: MetricsLog
    table: ConsoleTable
    console: Console
    codec: Codec | None  # rank 0 only: samples are written there
    peak_flops: float
    tokens_per_step: int
    val_starts: np.ndarray
    step: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    # (step, val loss, bits per byte) of the last evaluation. Kept in the checkpoint: a run resumed
    # from its final checkpoint must not evaluate (and append a sample) a second time.
    evaluated: tuple[int, float, float] | None = None

    def log(self, row: MetricsRow) -> None:
        self.metrics.append(row)
        self.table.print_row(row)


def make_optimizer(model: GPT, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on the weight matrices only: decaying norm gains pulls them toward
    zero, and decaying the embedding shrinks rare tokens' rows, neither of which regularises."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or name == "embed.weight" else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel updates all parameters in one pass (CPU and CUDA alike).
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=True)


def write_lineage(run: Run, resumed_at_step: int | None) -> None:
    """RUN/lineage.json: where the run's inputs came from. A resume appends to its `resumes` list."""
    path = run.run_dir / LINEAGE_NAME
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if resumed_at_step is not None and path.is_file():
        lineage = json.loads(path.read_text(encoding="utf-8"))
        lineage.setdefault("resumes", []).append({"step": resumed_at_step, "at": now, "git_commit": git_commit()})
    else:
        meta = run.data.meta
        lineage = {
            "tokens_dir": str(run.data.path.resolve()),
            "token_files": {name: str((run.data.path / f"{name}.bin").resolve()) for name in ("train", "val")},
            "dataset": meta.get("dataset"),
            "dataset_version": meta.get("dataset_version"),
            "tokenizer_id": meta.get("tokenizer_id"),
            "tokens_meta": meta,
            "config": run.cfg.model_dump(mode="json"),
            "model": run.gcfg.to_dict(),
            "n_params": run.model.n_params(),
            "git_commit": git_commit(),
            "torch_version": torch.__version__,
            "device": devices.device_name(run.device),
            "world_size": run.dist.world_size,
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


def _with(cfg: TrainConfig, **fields) -> TrainConfig:
    return TrainConfig.model_validate(cfg.model_dump() | {k: v for k, v in fields.items() if v is not None})


def setup(tokens_dir: str | Path, out_dir: str | Path, cfg: TrainConfig | None, resume: bool,
          max_tokens: int | None, max_seconds: float | None, device_choice: str | None, console: Console | None) -> Run:
    """Everything before the first step: the config (given, the checkpoint's, or planned for the time
    budget), the device, the token files, model, optimizer, sampler and metrics, restored from the
    checkpoint on resume."""
    run_dir = Path(out_dir)
    state = None
    if resume and checkpoint_path(run_dir).is_file():
        state = load_checkpoint(run_dir)
        cfg = _resumed_config(TrainConfig.model_validate(state["config"]), cfg)
    elif checkpoint_path(run_dir).is_file():
        raise RunExistsError(f"{run_dir} already holds a run; pass resume=True (--resume) or another directory")
    planned = cfg is None and max_seconds is not None and max_tokens is None
    cfg = _with(cfg or TrainConfig(), max_tokens=max_tokens, max_seconds=max_seconds, device=device_choice)

    device = devices.pick_device(cfg.device)
    devices.configure(device)
    dist = Distributed.from_env(device)
    try:
        return _build(run_dir, tokens_dir, cfg, state, planned, device, dist, console or Console(quiet=not dist.is_main))
    except BaseException:
        dist.close()
        raise


def _build(run_dir: Path, tokens_dir: str | Path, cfg: TrainConfig, state: dict | None, planned: bool,
           device: torch.device, dist: Distributed, console: Console) -> Run:
    if cfg.num_threads and device.type == "cpu":
        torch.set_num_threads(cfg.num_threads)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    bf16 = devices.use_bf16(device, cfg.precision)
    data = TokensDir.open(tokens_dir)
    peak = cfg.peak_flops or dist.from_main(measure_peak_flops(device, torch.bfloat16 if bf16 else torch.float32))
    if planned:
        plan = plan_run(cfg.max_seconds, peak, device.type, data.vocab_size, data.train.n_tokens, dist.world_size)
        cfg = _with(cfg, **plan.fields)
        console.print("\n".join(plan.reasons), soft_wrap=True, highlight=False)

    gcfg = cfg.gpt_config(data.vocab_size)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank
    model = GPT(gcfg).to(device)
    if not cfg.max_tokens and not cfg.max_seconds:
        cfg = _with(cfg, max_tokens=int(TOKENS_PER_PARAM * count_params(gcfg)))
    optimizer = make_optimizer(model, cfg)
    sampler = RandomWindows(data.train.tokens, gcfg.block_size, seed=cfg.seed)
    metrics = MetricsLog(run_dir)
    step_model = torch.compile(model) if cfg.compile else model
    if dist.active:
        step_model = DistributedDataParallel(step_model, device_ids=[device.index] if device.type == "cuda" else None)
    run = Run(
        cfg=cfg, gcfg=gcfg, run_dir=run_dir, device=device, dist=dist, autocast=devices.autocast(device, bf16),
        data=data, model=model, step_model=step_model, optimizer=optimizer, sampler=sampler,
        schedule=Schedule(cfg.lr, cfg.min_lr_ratio, cfg.warmup_steps, cfg.max_tokens, cfg.max_seconds),
        metrics=metrics, table=ConsoleTable(console), console=console, codec=None, peak_flops=peak,
        tokens_per_step=cfg.batch_size * gcfg.block_size * cfg.grad_accum * dist.world_size,
        val_starts=eval_windows(data.val.n_tokens, gcfg.block_size, cfg.eval_tokens)[dist.rank :: dist.world_size],
    )
    if state is not None:
        if state["vocab_size"] != data.vocab_size:
            raise UsageError(f"{tokens_dir}: vocabulary {data.vocab_size}, the checkpoint's is {state['vocab_size']}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        sampler.load_state_dict(state["data"])
        run.step, run.tokens, run.elapsed = (state["schedule"][k] for k in ("step", "tokens", "elapsed_s"))
        run.evaluated = tuple(state["evaluated"]) if state.get("evaluated") else None
        rng = state["rng"]
        restore_rng(rng[dist.rank] if len(rng) == dist.world_size else rng[0])
        metrics.resume_from(run.step)
    else:
        torch.manual_seed(cfg.seed + dist.rank)  # each rank's own dropout stream

    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_lineage(run, run.step if state else None)
        _trim_samples(run_dir, state.get("samples_bytes", 0) if state else 0)
        if data.tokenizer_path.is_file():
            shutil.copyfile(data.tokenizer_path, run_dir / TOKENIZER_NAME)
            run.codec = load_codec(run_dir / TOKENIZER_NAME)
    console.print(describe_estimate(gcfg, cfg.max_tokens, cfg.max_seconds, run.tokens_per_step, peak,
                                    assumed_mfu=EXPECTED_MFU[device.type]), soft_wrap=True)
    console.print(f"device {devices.device_name(device)} ({device}), {'bf16 autocast' if bf16 else 'fp32'}"
                  f"{', compiled' if cfg.compile else ''}; --max-seconds counts every step, evaluation and "
                  "checkpoint (compilation included), not this setup", soft_wrap=True)
    if state is not None:
        console.print(f"resuming {run_dir} at step {run.step:,} ({run.tokens:,} tokens, {run.elapsed:.1f}s)")
    return run


def _trim_samples(run_dir: Path, keep_bytes: int) -> None:
    """Cut samples.txt back to what it held at the checkpoint being resumed (nothing, on a fresh
    run): samples written after it came from steps the resumed run is about to redo."""
    path = run_dir / SAMPLES_NAME
    if path.is_file() and path.stat().st_size > keep_bytes:
        with open(path, "r+b") as f:
            f.truncate(keep_bytes)


def train_step(run: Run, lr: float) -> torch.Tensor:
    """One optimizer step over grad_accum micro-batches. Returns the micro-batches' summed loss as a
    device tensor: reading it would wait for the GPU, so the loop does that only when it logs."""
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    cfg, accum = run.cfg, run.cfg.grad_accum
    loss_sum = None
    for micro in range(accum):
        x, y = run.sampler.next_batch(cfg.batch_size, run.dist.rank, run.dist.world_size)
        x, y = to_device(x, run.device), to_device(y, run.device)
        # DDP averages gradients across ranks on every backward; accumulating micro-batches only
        # need that once, on the last one.
        last = micro == accum - 1
        with run.step_model.no_sync() if run.dist.active and not last else contextlib.nullcontext():
            with run.autocast:
                _, loss = run.step_model(x, y)
            (loss / accum).backward()
        loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
    if cfg.grad_clip:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    run.tokens += run.tokens_per_step
    return loss_sum


@torch.no_grad()
def evaluate(run: Run) -> tuple[float, float]:
    """Mean validation loss (nats per token) over the run's windows, each rank scoring its share,
    and the same in bits per byte of text."""
    model = run.model
    was_training = model.training
    model.eval()
    total = torch.zeros(2, dtype=torch.float64, device=run.device)  # summed loss, token count
    for x, y in window_batches(run.data.val.tokens, run.val_starts, run.gcfg.block_size, run.cfg.batch_size):
        with run.autocast:
            _, loss = model(to_device(x, run.device), to_device(y, run.device))
        total[0] += loss.double() * y.numel()
        total[1] += y.numel()
    model.train(was_training)
    run.dist.sum(total)
    val_loss = (total[0] / total[1]).item()
    return val_loss, run.data.bits_per_byte(val_loss)


def evaluate_and_sample(run: Run) -> tuple[float, float]:
    """Validation loss and bits per byte; rank 0 appends a sample to samples.txt and the console."""
    val_loss, val_bpb = evaluate(run)
    cfg = run.cfg
    if run.codec is not None and cfg.sample_tokens:
        with run.autocast:
            text = sample_text(run.model, run.codec, cfg.sample_prompt, cfg.sample_tokens, 0.8, 200, cfg.seed + run.step)
        with open(run.run_dir / SAMPLES_NAME, "a", encoding="utf-8") as f:
            f.write(f"--- step {run.step} (val loss {val_loss:.4f}, {val_bpb:.4f} bits/byte)\n{text}\n")
        run.console.print(text.strip()[:300], style="dim", highlight=False, markup=False)
    run.evaluated = (run.step, val_loss, val_bpb)
    return val_loss, val_bpb


def save(run: Run) -> None:
    """RUN/checkpoint.pt and metrics.parquet. A collective: every rank takes part."""
    rng = run.dist.gather(capture_rng())
    if not run.dist.is_main:
        return
    samples = run.run_dir / SAMPLES_NAME
    save_checkpoint(run.run_dir, {
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "schedule": {"step": run.step, "tokens": run.tokens, "elapsed_s": run.elapsed, **asdict(run.schedule)},
        "data": run.sampler.state_dict(),
        "rng": rng,
        "config": run.cfg.model_dump(mode="json"),
        "gpt_config": run.gcfg.to_dict(),
        "vocab_size": run.data.vocab_size,
        "samples_bytes": samples.stat().st_size if samples.is_file() else 0,
        "evaluated": list(run.evaluated) if run.evaluated else None,
    })
    run.metrics.write()


def train(
    tokens_dir: str | Path,
    out_dir: str | Path,
    cfg: TrainConfig | None = None,
    resume: bool = False,
    *,
    max_tokens: int | None = None,
    max_seconds: float | None = None,
    stop_at_step: int | None = None,
    device: str | None = None,
    console: Console | None = None,
) -> TrainResult:
    """Train on TOKENS_DIR's train.bin, evaluate on its val.bin, write the run to out_dir.

    cfg: None means the defaults — or, given only max_seconds, a config planned for that time on this
    device (model/plan.py:plan_run) — or on resume the checkpoint's own config. max_tokens /
    max_seconds override the config's budget; both count the whole run, across resumes; device
    (auto/cpu/cuda) overrides the config's. resume:
    continue from out_dir's checkpoint (a fresh start when it has none). stop_at_step: stop after
    that many optimizer steps with a checkpoint, as a preempted job would, without changing the schedule."""
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    run = None
    try:
        run = setup(tokens_dir, out_dir, cfg, resume, max_tokens, max_seconds, device, console)
        cfg, dist = run.cfg, run.dist
        fpt = flops_per_token(run.gcfg)
        start_step, start_tokens = run.step, run.tokens
        call_start = time.perf_counter()
        clock_start = call_start - run.elapsed  # the run's clock continues across resumes
        last_log_time, last_log_tokens = call_start, run.tokens
        train_loss = loss_sum = None
        lr = run.schedule.lr_at(run.step, run.schedule.progress(run.tokens, run.elapsed))
        run.model.train()
        while True:
            run.elapsed = time.perf_counter() - clock_start
            if cfg.max_seconds:
                run.elapsed = dist.from_main(run.elapsed)
            progress = run.schedule.progress(run.tokens, run.elapsed)
            if progress >= 1.0:
                stopped_by = "max_tokens" if cfg.max_tokens and run.tokens >= cfg.max_tokens else "max_seconds"
                break
            if stop_at_step is not None and run.step >= stop_at_step:
                stopped_by = "stop_at_step"
                break
            lr = run.schedule.lr_at(run.step, progress)
            loss_sum = train_step(run, lr)

            if run.step % cfg.log_interval == 0:
                train_loss = dist.sum(loss_sum).item() / (cfg.grad_accum * dist.world_size)  # waits for the device
                now = time.perf_counter()
                rate = (run.tokens - last_log_tokens) / (now - last_log_time)
                last_log_time, last_log_tokens = now, run.tokens
                run.log(MetricsRow(run.step, run.tokens, now - clock_start, lr, train_loss=train_loss,
                                   tokens_per_s=rate, mfu=rate * fpt / dist.world_size / run.peak_flops))
            if run.step % cfg.eval_interval == 0:
                val_loss, val_bpb = evaluate_and_sample(run)
                run.log(MetricsRow(run.step, run.tokens, time.perf_counter() - clock_start, lr, val_loss=val_loss, val_bpb=val_bpb))
                if dist.is_main:
                    run.metrics.write()
            if run.step % cfg.checkpoint_interval == 0:
                run.elapsed = time.perf_counter() - clock_start
                save(run)

        call_seconds = time.perf_counter() - call_start
        if run.step > start_step and train_loss is None:
            train_loss = dist.sum(loss_sum).item() / (cfg.grad_accum * dist.world_size)
        if run.evaluated is None or run.evaluated[0] != run.step:
            val_loss, val_bpb = evaluate_and_sample(run)
            run.log(MetricsRow(run.step, run.tokens, run.elapsed, lr, val_loss=val_loss, val_bpb=val_bpb))
        _, val_loss, val_bpb = run.evaluated
        save(run)
        run.console.print(
            f"stopped by {stopped_by} at step {run.step:,}: {run.tokens:,} tokens in {run.elapsed:.1f}s; "
            f"val loss {val_loss:.4f}, {val_bpb:.4f} bits/byte", soft_wrap=True
        )
        return TrainResult(
            run_dir=run.run_dir,
            steps=run.step,
            tokens=run.tokens,
            elapsed_s=run.elapsed,
            tokens_per_s=(run.tokens - start_tokens) / call_seconds if call_seconds > 0 else 0.0,
            train_loss=train_loss,
            val_loss=val_loss,
            val_bpb=val_bpb,
            stopped_by=stopped_by,
        )
    finally:
        torch.use_deterministic_algorithms(deterministic_before)
        if run is not None:
            run.dist.close()
