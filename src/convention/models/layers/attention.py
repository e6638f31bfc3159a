"""Convolutional self-attention over feature-map tokens (the paper's convolutional BERT).

For tokens n, m the score map of head g is conv5x5(Q_n + K_m)[g], one spatial map per
head; softmax over m runs pixel by pixel. The convolution is linear, so
conv(Q_n + K_m) = conv(Q_n) + conv_nobias(K_m), and the query's term, constant over m,
cancels in the softmax: as published (and in the authors' code), every query gets the same
weights softmax_m(conv_nobias(K_m)). Without dropout on the weights (inference, or
``attention_dropout`` 0) the layer is computed that way, exactly: one weighted sum of the
values per object, no N x N maps, and the query projection and the similarity's bias get
no gradient. With dropout in training each (query, key) weight is dropped on its own, so
the N^2 pairs are formed by broadcasting, padded keys masked out.

``score="dot"`` is an attention that depends on its query: at each pixel, each head's
score of (n, m) is the scaled dot product of Q_n and K_m over the head's channels, then a
per-head 5x5 convolution of those score maps (initialised to the identity) gives them the
published layer's spatial reach. Not in the paper: a preset of its own (``cpu-dot``).
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


SCORES = ("sum", "dot")


class ConvSelfAttention(nn.Module):
    """Multi-head convolutional self-attention on (B, N, D, h, w) tokens.

    Args:
        channels: D.
        heads: G, dividing D.
        kernel: side of the score convolution.
        dropout: on the attention weights.
        score: ``sum``, the published conv(Q_n + K_m); ``dot``, the query-dependent
            conv_g(Q_n . K_m) (see the module).
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        kernel: int = 5,
        dropout: float = 0.1,
        score: str = "sum",
    ):
        super().__init__()
        if heads < 1 or channels % heads:
            raise ValueError(f"{channels} channels do not split into {heads} heads")
        if score not in SCORES:
            raise ValueError(f"attention score {score!r} is not one of {', '.join(SCORES)}")
        self.heads, self.score = heads, score
        self.qkv = nn.Conv2d(channels, 3 * channels, kernel_size=1)
        if score == "sum":
            self.similarity = nn.Conv2d(channels, heads, kernel_size=kernel, padding=kernel // 2)
        else:
            self.similarity = nn.Conv2d(
                heads, heads, kernel_size=kernel, padding=kernel // 2, groups=heads, bias=False
            )
            with torch.no_grad():  # starts as the plain per-pixel dot product
                self.similarity.weight.zero_()
                self.similarity.weight[:, :, kernel // 2, kernel // 2] = 1.0
        self.out = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, N, D, h, w); mask (B, N) True for real tokens -> (B, N, D, h, w)."""
        if self.score == "dot":
            return self._dot(x, mask)
        if self.training and self.dropout.p > 0:
            return self._pairwise(x, mask)
        b, n, d, h, w = x.shape
        g = self.heads
        weight, bias = self.qkv.weight[d:], self.qkv.bias[d:]
        k, v = F.conv2d(x.flatten(0, 1), weight, bias).chunk(2, dim=1)
        scores = F.conv2d(k, self.similarity.weight, padding=self.similarity.padding)
        scores = scores.unflatten(0, (b, n))  # (B, N, G, h, w)
        scores = scores.masked_fill(~mask[:, :, None, None, None], float("-inf"))
        weights = torch.softmax(scores, dim=1)
        values = v.unflatten(0, (b, n)).unflatten(2, (g, d // g))  # (B, N, G, c, h, w)
        mixed = (weights[:, :, :, None] * values).sum(dim=1).reshape(b, d, h, w)
        return self.out(mixed)[:, None].expand(b, n, d, h, w)

    def _pairwise(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The same layer with every (query, key) weight formed, for dropout on them."""
        b, n, d, h, w = x.shape
        g = self.heads
        q, k, v = self.qkv(x.flatten(0, 1)).chunk(3, dim=1)
        # Scores laid out (B, G, h, w, Nq, Nk): the softmax runs over the last, contiguous
        # axis and the weighted sum of values is one batched matmul.
        score_q = self.similarity(q).unflatten(0, (b, n)).permute(0, 2, 3, 4, 1)
        score_k = F.conv2d(k, self.similarity.weight, padding=self.similarity.padding)
        score_k = score_k.unflatten(0, (b, n)).permute(0, 2, 3, 4, 1)
        scores = score_q[..., :, None] + score_k[..., None, :]
        scores = scores.masked_fill(~mask[:, None, None, None, None, :], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        values = v.unflatten(0, (b, n)).unflatten(2, (g, d // g)).permute(0, 2, 4, 5, 1, 3)
        mixed = weights @ values  # (B, G, h, w, Nq, c)
        mixed = mixed.permute(0, 4, 1, 5, 2, 3).reshape(b * n, d, h, w)
        return self.out(mixed).unflatten(0, (b, n))

    def _dot(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The query-dependent layer: per-pixel dot products of each head's Q_n and K_m,
        convolved per head, softmax over the real keys m."""
        b, n, d, h, w = x.shape
        g = self.heads
        c = d // g
        # Each of Q, K, V laid out (B, G, h, w, N, c): a pixel's tokens in the last two axes.
        q, k, v = (
            t.unflatten(0, (b, n)).unflatten(2, (g, c)).permute(0, 2, 4, 5, 1, 3)
            for t in self.qkv(x.flatten(0, 1)).chunk(3, dim=1)
        )
        products = (q @ k.transpose(-1, -2)) * c**-0.5  # (B, G, h, w, Nq, Nk)
        # The per-head convolution of the N x N score maps as the (h w, h w) matrix it is on
        # an h x w map (the convolution of each one-pixel map): one einsum, where a
        # convolution of B N^2 tiny maps spends its time on their layout.
        basis = torch.eye(h * w, dtype=x.dtype, device=x.device).reshape(h * w, 1, h, w)
        spread = self.similarity(basis.expand(-1, g, -1, -1)).flatten(2)  # (p, G, o)
        scores = torch.einsum("pgo,bgpqk->bgoqk", spread, products.flatten(2, 3))
        scores = scores.unflatten(2, (h, w))
        scores = scores.masked_fill(~mask[:, None, None, None, None, :], float("-inf"))
        weights = self.dropout(torch.softmax(scores, dim=-1))
        mixed = weights @ v  # (B, G, h, w, Nq, c)
        mixed = mixed.permute(0, 4, 1, 5, 2, 3).reshape(b * n, d, h, w)
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
    """Pre-norm block: x + attention(norm(x)), then x + feed_forward(norm(x)).

    ``attention_dropout`` (on the attention weights; default ``dropout``) is separate from
    the feed-forward's ``dropout``; ``score`` is the attention's (``ConvSelfAttention``).
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        max_tokens: int,
        heads: int,
        kernel: int,
        ff_hidden: int,
        dropout: float,
        attention_dropout: float | None = None,
        score: str = "sum",
    ):
        super().__init__()
        channels = shape[0]
        self.norm1 = TokenLayerNorm(shape, max_tokens)
        attention_dropout = dropout if attention_dropout is None else attention_dropout
        self.attention = ConvSelfAttention(channels, heads, kernel, attention_dropout, score)
        self.norm2 = TokenLayerNorm(shape, max_tokens)
        self.feed_forward = ConvFeedForward(channels, ff_hidden, dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, N, D, h, w); mask (B, N)."""
        x = x + self.attention(self.norm1(x), mask)
        return x + self.feed_forward(self.norm2(x))
