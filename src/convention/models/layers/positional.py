"""Sinusoidal positional encodings (Vaswani et al. 2017; the paper's eq. 4-5) over token
index or observation time, broadcast over the token's feature map."""

from __future__ import annotations

import torch
from torch import nn

POSITIONAL_ENCODINGS = ("index", "time")


def sinusoid(positions: torch.Tensor, channels: int) -> torch.Tensor:
    """(...,) positions -> (..., channels): sin on even channels, cos on odd ones."""
    i = torch.arange(channels, device=positions.device)
    rates = 1.0 / torch.pow(10000.0, (2 * (i // 2)).float() / channels)
    angles = positions[..., None].float() * rates
    return torch.where(i % 2 == 0, torch.sin(angles), torch.cos(angles))


class PositionalEncoding(nn.Module):
    """Adds a sinusoid per token to (B, N, D, h, w) tokens.

    ``index``: position = token number (the paper). ``time``: position = mean observation
    time of the token's valid frames, in days since the sequence's first frame.
    """

    def __init__(self, channels: int, kind: str = "index"):
        super().__init__()
        if kind not in POSITIONAL_ENCODINGS:
            raise ValueError(f"positional encoding must be one of {POSITIONAL_ENCODINGS}")
        self.channels, self.kind = channels, kind

    def forward(self, tokens: torch.Tensor, token_times: torch.Tensor) -> torch.Tensor:
        """tokens (B, N, D, h, w); token_times (B, N) days -> tokens + encoding."""
        b, n = tokens.shape[:2]
        if self.kind == "index":
            positions = torch.arange(n, device=tokens.device).expand(b, n)
        else:
            positions = token_times
        return tokens + sinusoid(positions, self.channels)[..., None, None]
