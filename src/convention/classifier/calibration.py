"""Probability calibration: temperature scaling (Guo et al. 2017), one temperature per
fold model, fitted on its validation split and saved in its ``settings.json``.

A temperature T divides the model's logits before the softmax: it keeps every object's
predicted class and changes how sure the probabilities are (T > 1 softens them). It is
the maximum-likelihood T on the validation split, the objects the model was not trained
on. Training fits it (``training.fit``), ``convention calibrate`` refits a run's
(``training.calibration``), and a loaded model carries it (:class:`TemperatureScaled`).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from torch import nn

# log T is searched in this range: T from 0.05 to 20.
LOG_T_BOUNDS = (-3.0, 3.0)


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``targets``.

    Args:
        logits: (N, C) the model's logits (or log-probabilities: the same up to a
            per-object constant, which the softmax ignores).
        targets: (N,) class indices; those below 0 (not of the model's classes) are left
            out.

    Returns:
        T > 0; 1.0 when no object has a target.
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets)
    keep = targets >= 0
    logits, targets = logits[keep], targets[keep]
    if len(targets) == 0:
        return 1.0
    rows = np.arange(len(targets))

    def nll(log_t: float) -> float:
        return float(-log_softmax(logits / np.exp(log_t), axis=1)[rows, targets].mean())

    best = minimize_scalar(nll, bounds=LOG_T_BOUNDS, method="bounded")
    return float(np.exp(best.x))


class TemperatureScaled(nn.Module):
    """A model whose logits are divided by its fitted temperature (a buffer, so an ONNX
    export carries it)."""

    def __init__(self, model: nn.Module, temperature: float):
        super().__init__()
        self.model = model
        self.input_spec = model.input_spec
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        """(B, C) the calibrated logits."""
        return self.model(**inputs) / self.temperature
