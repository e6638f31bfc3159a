"""Band embedding: an H x W map per band, concatenated to each frame as a second channel."""

from __future__ import annotations

import torch
from torch import nn

BAND_EMBEDDINGS = ("learned", "fixed", "none")


class BandEmbedding(nn.Module):
    """Maps band indices (B, M) to (B, M, H, W) images; index 0 (padding) maps to zeros.

    Args:
        n_bands: number of real bands (indices 1..n_bands).
        size: stamp side H = W.
        kind: ``learned`` (the paper: an nn.Embedding of H*W values per band), ``fixed``
            (a constant map per band, its rank scaled to (0, 1], not trained) or ``none``
            (no band channel: ``channels`` is 0).
    """

    def __init__(self, n_bands: int, size: int, kind: str = "learned"):
        super().__init__()
        if kind not in BAND_EMBEDDINGS:
            raise ValueError(f"band embedding must be one of {BAND_EMBEDDINGS}, got {kind!r}")
        self.kind, self.size = kind, size
        self.channels = 0 if kind == "none" else 1
        if kind == "learned":
            self.table = nn.Embedding(n_bands + 1, size * size, padding_idx=0)
        elif kind == "fixed":
            levels = torch.arange(n_bands + 1, dtype=torch.float32) / n_bands
            self.register_buffer("levels", levels)

    def maps(self) -> torch.Tensor:
        """(n_bands + 1, H, W) the map of every band index, zeros for 0 (padding)."""
        if self.kind == "learned":
            return self.table.weight.unflatten(-1, (self.size, self.size))
        if self.kind == "fixed":
            return self.levels[:, None, None].expand(len(self.levels), self.size, self.size)
        raise RuntimeError("the 'none' band embedding has no maps")

    def forward(self, bands: torch.Tensor) -> torch.Tensor:
        """(B, M) long band indices -> (B, M, H, W) float maps."""
        if self.kind == "learned":
            return self.table(bands).unflatten(-1, (self.size, self.size))
        if self.kind == "fixed":
            shape = (*bands.shape, self.size, self.size)
            return self.levels[bands][..., None, None].expand(shape)
        raise RuntimeError("the 'none' band embedding has no maps")
