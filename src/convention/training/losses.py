"""Classification losses: focal loss (Lin et al. 2017) and cross-entropy."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from convention.training.settings import LOSSES


class FocalLoss(nn.Module):
    """Mean of -(1 - p_t)^gamma log p_t over the batch; gamma = 0 is cross-entropy."""

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits (B, C), target (B,) class indices."""
        log_p = F.log_softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
        return (-((1.0 - log_p.exp()) ** self.gamma) * log_p).mean()


def make_loss(name: str) -> nn.Module:
    """``focal`` (gamma 2) or ``ce``."""
    if name == "focal":
        return FocalLoss(2.0)
    if name == "ce":
        return nn.CrossEntropyLoss()
    raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")
