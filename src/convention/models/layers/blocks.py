"""Small building blocks the baselines share: a 2D CNN encoder and an MLP head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def channels_last(images: torch.Tensor) -> torch.Tensor:
    """A (N, C, H, W) batch laid out channels-last (NHWC in memory; same shape, same
    values), so that a ``conv_stack`` it enters runs in that layout.

    On CPUs, oneDNN runs these convolutions of few channels, their BatchNorm and above all
    their bfloat16 max-pools much faster channels-last (``benchmarks/results/channels-last/``).
    """
    return images.contiguous(memory_format=torch.channels_last)


def conv_stack(in_channels: int, widths: Sequence[int]) -> list[nn.Module]:
    """3x3 conv + BatchNorm + ReLU + 2x2 max-pool per width: (N, C, H, W) ->
    (N, widths[-1], H / 2^k, W / 2^k) for k = len(widths)."""
    layers: list[nn.Module] = []
    channels = in_channels
    for width in widths:
        layers += [
            nn.Conv2d(channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        channels = width
    return layers


def conv_encoder(in_channels: int, widths: Sequence[int]) -> tuple[nn.Sequential, int]:
    """``conv_stack``, then global average pooling: (N, C, H, W) -> (N, widths[-1]).
    Returns the network and its output width."""
    layers = [*conv_stack(in_channels, widths), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), widths[-1]


def mlp_head(features: int, hidden: int, n_classes: int, dropout: float) -> nn.Sequential:
    """Dropout, one hidden ReLU layer, logits."""
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_classes),
    )
