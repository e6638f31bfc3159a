"""Which device a model trains and predicts on."""

from __future__ import annotations

import torch

from convention.errors import ConventionError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """``cpu`` or ``cuda`` for a requested device (``auto``: CUDA when torch sees a GPU).

    Raises:
        ConventionError: an unknown device name, or ``cuda`` where torch sees no GPU.
    """
    if name not in DEVICES:
        raise ConventionError(f"unknown device {name!r}; known: {', '.join(DEVICES)}")
    available = torch.cuda.is_available()
    if name == "cuda" and not available:
        raise ConventionError(
            f"device cuda asked for, but torch {torch.__version__} sees no CUDA GPU"
        )
    if name == "auto":
        return "cuda" if available else "cpu"
    return name


def device_name(device: str) -> str:
    """What the device is, for records: the GPU's name, or ``cpu``."""
    return torch.cuda.get_device_name() if device == "cuda" else "cpu"


def native_bfloat16(device: str) -> bool:
    """Whether bfloat16 arithmetic runs natively on ``device`` (``cpu`` or ``cuda``).

    On a CPU, oneDNN's bfloat16 kernels need AVX-512 or AMX; without them bfloat16 autocast
    is emulated and slower than float32 (a ConvEntion cpu-preset training step took 3.5 s
    against 0.78 s on an AVX2-only AMD EPYC, one thread).
    """
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()
