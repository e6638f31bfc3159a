"""Convolutional self-attention over feature-map tokens (the paper's convolutional BERT).

For tokens n, m the score map of head g is conv5x5(Q_n + K_m)[g], one spatial map per
head; softmax over m runs pixel by pixel. The convolution is linear, so
conv(Q_n + K_m) = conv(Q_n) + conv_nobias(K_m): every token is convolved once and all N^2
pairs are formed by broadcasting, with padded keys masked out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class TokenLayerNorm(nn.Module):
    """LayerNorm of each token over its (D, h, w) map, with an affine map per token position.

    Statistics never mix tokens, so padded tokens cannot change real ones; the per-position
    scale and shift keep the parameter count of the published model (LayerNorm over
    (D, h, w, N) in the authors' code).
    """

    def __init__(self, shape: tuple[int, int, int], max_tokens: int, eps: float = 1e-5):
        super().__init__()
        self.shape, self.eps = shape, eps
        self.weight = nn.Parameter(torch.ones(max_tokens, *shape))
        self.bias = nn.Parameter(torch.zeros(max_tokens, *shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, N, D, h, w) with N <= max_tokens."""
        n = x.shape[1]
        x = F.layer_norm(x, self.shape, eps=self.eps)
        return x * self.weight[:n] + self.bias[:n]


class ConvSelfAttention(nn.Module):
    """Multi-head convolutional self-attention on (B, N, D, h, w) tokens."""

    def __init__(self, channels: int, heads: int, kernel: int = 5, dropout: float = 0.1):
        super().__init__()
        if heads < 1 or channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        self.heads = heads
        self.qkv = nn.Conv2d(channels, 3 * channels, kernel_size=1)
        self.similarity = nn.Conv2d(channels, heads, kernel_size=kernel, padding=kernel // 2)
        self.out = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, N, D, h, w); mask (B, N) True for real tokens -> (B, N, D, h, w)."""
        b, n, d, h, w = x.shape
        q, k, v = self.qkv(x.flatten(0, 1)).chunk(3, dim=1)
        score_q = self.similarity(q).unflatten(0, (b, n))  # (B, N, G, h, w)
        score_k = F.conv2d(k, self.similarity.weight, padding=self.similarity.padding)
        score_k = score_k.unflatten(0, (b, n))
        scores = score_q[:, :, None] + score_k[:, None, :]  # (B, Nq, Nk, G, h, w)
        scores = scores.masked_fill(~mask[:, None, :, None, None, None], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=2))
        values = v.unflatten(0, (b, n)).unflatten(2, (self.heads, d // self.heads))
        mixed = torch.einsum("bnmgxy,bmgcxy->bngcxy", weights, values).reshape(b * n, d, h, w)
        return self.out(mixed).unflatten(0, (b, n))


class ConvFeedForward(nn.Module):
    """Two 3x3 convolutions with a ReLU between, applied to each token map."""

    def __init__(self, channels: int, hidden: int, dropout: float = 0.1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv2d(hidden, channels, kernel_size=3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D, h, w) -> (B, N, D, h, w)."""
        return self.net(x.flatten(0, 1)).unflatten(0, x.shape[:2])


class ConvTransformerLayer(nn.Module):
    """Pre-norm block: x + attention(norm(x)), then x + feed_forward(norm(x))."""

    def __init__(
        self,
        shape: tuple[int, int, int],
        max_tokens: int,
        heads: int,
        kernel: int,
        ff_hidden: int,
        dropout: float,
    ):
        super().__init__()
        channels = shape[0]
        self.norm1 = TokenLayerNorm(shape, max_tokens)
        self.attention = ConvSelfAttention(channels, heads, kernel, dropout)
        self.norm2 = TokenLayerNorm(shape, max_tokens)
        self.feed_forward = ConvFeedForward(channels, ff_hidden, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, N, D, h, w); mask (B, N)."""
        x = x + self.attention(self.norm1(x), mask)
        return x + self.feed_forward(self.norm2(x))
