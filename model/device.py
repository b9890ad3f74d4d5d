"""Where a run computes. `pick_device` is the one place that decides; the model, the batches,
evaluation, sampling, the peak measurement and checkpoint loading all take its answer.

    auto   CUDA when torch sees a GPU, else the CPU
    cuda   a GPU, or an error saying torch sees none
    cpu    the CPU, even where a GPU is

Under torchrun each process on a node has its own GPU: LOCAL_RANK picks it (cuda:LOCAL_RANK).
"""

from __future__ import annotations

import contextlib
import os
from typing import Literal

import torch

from warehouse.errors import TokenmillError

DeviceChoice = Literal["auto", "cpu", "cuda"]
DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceError(TokenmillError, ValueError):
    """The device asked for is not there (message says what torch sees)."""


def pick_device(requested: str = "auto", environ: dict | None = None) -> torch.device:
    """The device this process trains or samples on (see the module docstring)."""
    if requested not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {requested!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    has_cuda = torch.cuda.is_available()
    if requested == "cuda" and not has_cuda:
        raise DeviceError("device 'cuda' was asked for but torch sees no CUDA device")
    if requested == "cpu" or not has_cuda:
        return torch.device("cpu")
    local_rank = int((os.environ if environ is None else environ).get("LOCAL_RANK", "0"))
    if local_rank >= torch.cuda.device_count():
        raise DeviceError(f"LOCAL_RANK {local_rank} but torch sees {torch.cuda.device_count()} CUDA device(s)")
    return torch.device("cuda", local_rank)


def configure(device: torch.device) -> None:
    """Process-wide settings for fast training on `device`. On CUDA: this process's current GPU is
    `device` (so kernels, NCCL and `torch.cuda.*` calls without an index land there), and fp32
    matrix products that stay outside autocast (optimizer-side, a user's fp32 run) use TF32."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def use_bf16(device: torch.device, precision: str) -> bool:
    """precision auto: bf16 autocast on CUDA (every GPU we target runs bf16 matmuls at full rate),
    fp32 on CPU (where bf16 matmuls are emulated on most cores and slower)."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")


def autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work: before reading a clock, never inside the step."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
