"""The device and every GPU decision, proven on a CPU: torch is told a GPU is there
(torch.cuda.is_available patched) and the trainer and sampler are caught choosing it."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import model.loss
import model.sample
import model.train
from model.checkpoint import load_checkpoint
from model.config import load_train_config
from model.device import DeviceError, configure, pick_device
from model.gpt import GPT, Rotary, preset
from model.loss import linear_cross_entropy
from model.train import make_optimizer, train
from tokenizer.cli import tokenize_text

TINY = dict(preset="tiny", batch_size=8, lr=3e-3, warmup_steps=5, num_threads=1, sample_tokens=0)


class Stop(Exception):
    """Raised by a patched function once the device it was given has been recorded."""


@pytest.fixture
def fake_gpu(monkeypatch):
    """torch reports `n` CUDA devices; calls that would touch one are recorded or made no-ops.
    Module.to records its device and leaves the model where it is (on the CPU)."""
    seen: dict[str, list] = {"module_to": []}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    # configure() flips these process-wide: put them back after the test.
    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    real_to = torch.nn.Module.to

    def record_to(self, *args, **kwargs):
        if args and isinstance(args[0], (torch.device, str)):
            seen["module_to"].append(torch.device(args[0]))
            return self
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", record_to)
    yield seen
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32


@pytest.fixture(scope="module")
def tokens_dir(shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tokens") / "tok"
    tokenize_text([shared_data / "prose" / "tinyshakespeare.txt"], out, vocab_size=512, workers=1, progress=False)
    return out


def test_auto_picks_the_gpu_when_torch_sees_one(fake_gpu, monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert pick_device("auto") == torch.device("cuda", 0)
    assert pick_device("cuda") == torch.device("cuda", 0)
    assert pick_device("cpu") == torch.device("cpu")


def test_under_torchrun_each_process_takes_its_local_rank_gpu(fake_gpu):
    assert pick_device("auto", {"LOCAL_RANK": "1", "WORLD_SIZE": "2"}) == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match="LOCAL_RANK 2"):
        pick_device("auto", {"LOCAL_RANK": "2"})


def test_without_a_gpu_auto_is_the_cpu_and_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    with pytest.raises(DeviceError, match="no CUDA device"):
        pick_device("cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        pick_device("tpu")


@pytest.mark.shared
def test_a_single_process_run_puts_model_peak_measurement_and_batches_on_the_gpu(fake_gpu, tokens_dir, tmp_path, monkeypatch):
    # The bug of issue #9: with one process the trainer stayed on the CPU while a GPU was there.
    peak_devices, batch_devices = [], []

    def fake_peak(device, dtype=torch.float32, seconds=0.5):
        peak_devices.append((torch.device(device), dtype))
        return 1e12

    def stop_at_first_batch(t, device):
        batch_devices.append(device)
        raise Stop

    monkeypatch.setattr(model.train, "measure_peak_flops", fake_peak)
    monkeypatch.setattr(model.train, "to_device", stop_at_first_batch)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    with pytest.raises(Stop):
        train(tokens_dir, tmp_path / "run", load_train_config(None, **TINY), max_tokens=10 * 8 * 64)
    cuda0 = torch.device("cuda", 0)
    assert fake_gpu["module_to"] == [cuda0]
    assert peak_devices == [(cuda0, torch.bfloat16)]  # bf16 is what autocast runs the matmuls in
    assert batch_devices == [cuda0]


@pytest.mark.shared
def test_sampling_loads_the_run_onto_the_gpu(fake_gpu, tokens_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    with mock.patch.object(torch.cuda, "is_available", lambda: False):
        train(tokens_dir, run, load_train_config(None, **TINY), max_tokens=2 * 8 * 64)
    locations = []
    fake_gpu["module_to"].clear()

    def load_on_cpu(run_dir, map_location="cpu"):
        locations.append(torch.device(map_location))
        return load_checkpoint(run_dir)

    monkeypatch.setattr(model.sample, "load_checkpoint", load_on_cpu)
    text = model.sample.sample_run(run, prompt="ROMEO:", max_new_tokens=5)
    assert text.startswith("ROMEO:")
    assert locations == [torch.device("cuda", 0)] and fake_gpu["module_to"] == [torch.device("cuda", 0)]


def test_on_cuda_matmuls_outside_autocast_use_tf32(fake_gpu):
    configure(torch.device("cuda", 0))
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_the_optimizer_is_fused_adamw():
    opt = make_optimizer(GPT(preset("tiny")), load_train_config(None, preset="tiny"))
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults["fused"] is True


def test_batches_go_to_the_gpu_through_pinned_memory_without_waiting():
    from model.data import to_device

    batch = mock.MagicMock()
    cuda = torch.device("cuda", 0)
    to_device(batch, cuda)
    batch.pin_memory.assert_called_once_with()
    batch.pin_memory.return_value.to.assert_called_once_with(cuda, non_blocking=True)
    cpu_batch = torch.zeros(2, 3, dtype=torch.long)
    assert to_device(cpu_batch, torch.device("cpu")) is cpu_batch  # no copy on the CPU


# --- The fast path a GPU takes, checked on the CPU. ---

class Shapes(TorchDispatchMode):
    """Records dtype and element count of every tensor an operation produces."""

    def __init__(self):
        super().__init__()
        self.outputs: list[tuple[torch.dtype, int]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.outputs.append((t.dtype, t.numel()))
        return out


def test_the_loss_and_its_gradients_equal_cross_entropy_over_full_logits(monkeypatch):
    monkeypatch.setattr(model.loss, "SLICE_ELEMENTS", 128 * 1000)  # 128 rows a slice: 3 slices of 300
    torch.manual_seed(0)
    x = torch.randn(300, 64, requires_grad=True)
    w = (0.1 * torch.randn(1000, 64)).requires_grad_()
    y = torch.randint(1000, (300,))
    expected = F.cross_entropy(x @ w.t(), y)
    gx, gw = torch.autograd.grad(expected, (x, w))
    loss = linear_cross_entropy(x, w, y)
    lx, lw = torch.autograd.grad(3 * loss, (x, w))  # a scaled loss (gradient accumulation) scales both
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(lx, 3 * gx)
    torch.testing.assert_close(lw, 3 * gw)


def test_the_bf16_loss_matches_fp32_within_bf16_precision():
    cfg = preset("tiny")
    torch.manual_seed(0)
    gpt = GPT(cfg)
    idx = torch.randint(cfg.vocab_size, (4, cfg.block_size))
    _, fp32 = gpt(idx, idx.roll(-1, 1))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, bf16 = gpt(idx, idx.roll(-1, 1))
    assert bf16.dtype == torch.float32  # the softmax and the mean are fp32 even under autocast
    assert abs(bf16.item() - fp32.item()) < 0.01 * fp32.item()


def test_no_fp32_copy_of_all_logits_is_ever_made(monkeypatch):
    # The old loss, F.cross_entropy(logits.float()), built (B*T, V) fp32 logits; autograd kept them.
    monkeypatch.setattr(model.loss, "SLICE_ELEMENTS", 128 * 512)
    cfg = preset("tiny")  # vocabulary 512, context 64
    gpt = GPT(cfg)
    idx = torch.randint(cfg.vocab_size, (8, cfg.block_size))
    with Shapes() as seen, torch.autocast("cpu", dtype=torch.bfloat16):
        _, loss = gpt(idx, idx.roll(-1, 1))
        loss.backward()
    all_logits = 8 * cfg.block_size * cfg.vocab_size  # larger than any activation of this model
    assert max(n for _, n in seen.outputs) < all_logits


def test_rotary_turns_bf16_queries_in_bf16():
    cfg = preset("tiny")
    rotary = Rotary(cfg.head_dim, cfg.block_size, cfg.rope_base)
    x = torch.randn(2, cfg.block_size, 4, cfg.head_dim, dtype=torch.bfloat16)
    with Shapes() as seen:
        out = rotary(x)
    assert out.dtype == torch.bfloat16
    assert not [n for dtype, n in seen.outputs if dtype == torch.float32 and n >= x.numel()]
    exact = rotary(x.float())  # the fp32 path
    torch.testing.assert_close(out.float(), exact, atol=0.05, rtol=0.02)


@pytest.mark.shared
def test_steps_never_wait_for_the_device_except_to_log(tokens_dir, tmp_path, monkeypatch):
    # .item(), float(), .tolist() on a GPU tensor each stall until the GPU catches up.
    syncs = []
    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        real = getattr(torch.Tensor, name)

        def counted(self, *args, _real=real, _name=name, **kwargs):
            syncs.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    steps = 24
    cfg = load_train_config(None, **TINY, log_interval=12, eval_interval=1000, checkpoint_interval=1000)
    train(tokens_dir, tmp_path / "run", cfg, max_tokens=steps * 8 * 64)
    # Two log lines, one evaluation at the end: 3 reads in 24 steps, none per step.
    assert len(syncs) <= 4, syncs
