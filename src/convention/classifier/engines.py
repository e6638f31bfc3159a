"""Probability engines: what turns a collated batch into each ensemble member's class
probabilities. :class:`TorchEngine` runs the fold models with PyTorch;
``classifier.onnx.OnnxEngine`` runs an ONNX export with onnxruntime."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn

from convention.device import resolve_device
from convention.errors import ConventionError

PRECISIONS = ("32", "bf16")


def member_probabilities(
    models: Sequence[torch.nn.Module], inputs: dict[str, torch.Tensor]
) -> torch.Tensor:
    """(K, B, C) the softmax of each of the K ``models`` on a collated batch's inputs."""
    return torch.stack([torch.softmax(m(**inputs).float(), dim=1) for m in models])


class ProbabilityEngine(Protocol):
    """What computes a collated batch's class probabilities: (K, B, C), one (B, C) slice
    per member of the ensemble (fold models, and dropout samples of each)."""

    def __call__(self, inputs: dict[str, torch.Tensor]) -> np.ndarray: ...


class TorchEngine:
    """The fold models' softmax with PyTorch, on ``device``, in ``precision`` (``32``, or
    ``bf16``: bfloat16 autocast, faster where the hardware has it).

    ``dropout_samples`` > 0: Monte Carlo dropout (Gal & Ghahramani 2016): each fold model
    runs that many times with its dropout layers active, each run a member of the ensemble.
    The draws are seeded by the batch's position in the stream, so a data set's predictions
    repeat run to run.

    Raises:
        ConventionError: an unknown precision, negative dropout samples, an unknown device
            or cuda without a GPU.
    """

    def __init__(
        self,
        models: Sequence[torch.nn.Module],
        device: str = "cpu",
        precision: str = "32",
        dropout_samples: int = 0,
    ):
        if precision not in PRECISIONS:
            raise ConventionError(
                f"--precision must be one of {list(PRECISIONS)}, got {precision!r}"
            )
        if dropout_samples < 0:
            raise ConventionError(f"--dropout-samples must be 0 or more, got {dropout_samples}")
        self.device = resolve_device(device)
        self.models = [m.to(self.device) for m in models]
        self.precision = precision
        self.dropout_samples = dropout_samples
        self._batches = 0

    @torch.no_grad()
    def __call__(self, inputs: dict[str, torch.Tensor]) -> np.ndarray:
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.autocast(self.device, torch.bfloat16, enabled=self.precision == "bf16"):
            if not self.dropout_samples:
                return member_probabilities(self.models, inputs).cpu().numpy()
            with torch.random.fork_rng(devices=[]), _dropout_active(self.models):
                torch.manual_seed(self._batches)
                self._batches += 1
                members = [
                    member_probabilities(self.models, inputs) for _ in range(self.dropout_samples)
                ]
            return torch.cat(members).cpu().numpy()


@contextlib.contextmanager
def _dropout_active(models: Sequence[torch.nn.Module]) -> Iterator[None]:
    """The models' dropout layers in training mode (everything else stays in eval)."""
    layers = [m for model in models for m in model.modules() if isinstance(m, nn.Dropout)]
    for layer in layers:
        layer.train()
    try:
        yield
    finally:
        for layer in layers:
            layer.eval()
