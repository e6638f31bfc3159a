"""ConvEntion (Bairouk et al. 2023, A&A 673, A141): band embedding, a 3D CNN over chunks of K
frames, a convolutional BERT over the resulting feature-map tokens, and a max-pool head.

Reads top-down: the 3D-CNN tokenizer, the model, its presets, registered constructors.
Three defects of the authors' public code are fixed here: padded tokens are masked in
attention, pooling and normalisation; band index 0 is padding and no real band maps to it;
and sequences of any length (not only multiples of K) are padded and masked.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from convention.inputs.spec import InputSpec
from convention.models.layers.attention import ConvTransformerLayer
from convention.models.layers.band_embedding import BandEmbedding
from convention.models.layers.positional import PositionalEncoding
from convention.models.registry import register_model

Triple = tuple[int, int, int]


@dataclass(frozen=True)
class ConvEntionConfig:
    """Hyper-parameters of ConvEntion. Kernels, strides and paddings are (time, y, x)."""

    stamp_size: int = 32
    max_frames: int = 99
    chunk: int = 3
    widths: tuple[int, ...] = (64, 128, 64)
    token_channels: int = 8
    kernels: tuple[Triple, ...] = ((3, 11, 11), (3, 5, 5), (3, 3, 3), (3, 3, 3))
    strides: tuple[Triple, ...] = ((2, 2, 2), (1, 1, 1), (1, 1, 1), (1, 1, 1))
    paddings: tuple[Triple, ...] = ((2, 2, 2), (2, 2, 2), (0, 0, 0), (0, 0, 0))
    layers: int = 2
    heads: int = 4
    similarity_kernel: int = 5
    ff_hidden: int = 16
    head_hidden: int = 256
    dropout: float = 0.1
    head_dropout: float = 0.4
    band_embedding: str = "learned"
    positional_encoding: str = "index"
    cnn: str = "3d"  # "2d": the ablation with time kernels of 1 (frames encoded one by one)

    @property
    def max_tokens(self) -> int:
        """Tokens of the longest sequence: ceil(max_frames / chunk)."""
        return -(-self.max_frames // self.chunk)


class ChunkTokenizer(nn.Module):
    """3D CNN turning a chunk of K frames (C, K, H, W) into one (D, h, w) token."""

    def __init__(self, in_channels: int, cfg: ConvEntionConfig):
        super().__init__()
        widths = (*cfg.widths, cfg.token_channels)
        layers: list[nn.Module] = []
        channels = in_channels
        for width, kernel, stride, pad in zip(
            widths, cfg.kernels, cfg.strides, cfg.paddings, strict=True
        ):
            if cfg.cnn == "2d":
                kernel, stride, pad = (1, *kernel[1:]), (1, *stride[1:]), (0, *pad[1:])
            layers += [
                nn.Conv3d(channels, width, kernel, stride, pad),
                nn.BatchNorm3d(width),
                nn.ReLU(),
            ]
            channels = width
        self.net = nn.Sequential(*layers)
        self.two_d = cfg.cnn == "2d"
        try:
            with torch.no_grad():
                out = self.net(
                    torch.zeros(2, in_channels, cfg.chunk, cfg.stamp_size, cfg.stamp_size)
                )
        except RuntimeError:
            raise ValueError(
                f"{cfg.stamp_size}x{cfg.stamp_size} stamps are too small for "
                "these kernels and strides"
            ) from None
        if not self.two_d and out.shape[2] != 1:
            raise ValueError(f"the 3D CNN leaves {out.shape[2]} time steps, not 1: fix the preset")
        self.token_shape: tuple[int, int, int] = (cfg.token_channels, out.shape[3], out.shape[4])

    def forward(self, chunks: torch.Tensor) -> torch.Tensor:
        """(T, C, K, H, W) -> (T, D, h, w); the 2D variant averages its K frame maps."""
        out = self.net(chunks)
        return out.mean(dim=2) if self.two_d else out[:, :, 0]


class ConvEntion(nn.Module):
    """ConvEntion classifier over padded, masked frame sequences.

    Args:
        n_classes: number of output classes.
        n_bands: number of real bands (band indices 1..n_bands, 0 = padding).
        config: architecture (see the presets).
    """

    def __init__(self, n_classes: int, n_bands: int, config: ConvEntionConfig | None = None):
        super().__init__()
        cfg = config or ConvEntionConfig()
        self.config = cfg
        self.input_spec = InputSpec(("stamps",), cfg.stamp_size, cfg.max_frames)
        self.band_embedding = BandEmbedding(n_bands, cfg.stamp_size, cfg.band_embedding)
        self.tokenizer = ChunkTokenizer(1 + self.band_embedding.channels, cfg)
        shape = self.tokenizer.token_shape
        self.positional = PositionalEncoding(shape[0], cfg.positional_encoding)
        self.layers = nn.ModuleList(
            ConvTransformerLayer(
                shape, cfg.max_tokens, cfg.heads, cfg.similarity_kernel, cfg.ff_hidden, cfg.dropout
            )
            for _ in range(cfg.layers)
        )
        features = shape[0] * shape[1] * shape[2]
        self.head = nn.Sequential(
            nn.Dropout(cfg.head_dropout),
            nn.Linear(features, cfg.head_hidden),
            nn.ReLU(),
            nn.Dropout(cfg.head_dropout),
            nn.Linear(cfg.head_hidden, n_classes),
        )

    def forward(
        self,
        frames: torch.Tensor,
        bands: torch.Tensor,
        times: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """Class logits.

        Args:
            frames: (B, M, H, W) normalised frames, valid frames first, zeros after.
            bands: (B, M) band indices, 0 for padding.
            times: (B, M) days since the first frame.
            mask: (B, M) True for real frames; every sequence needs at least one.

        Returns:
            (B, n_classes) logits.
        """
        cfg = self.config
        b, m = frames.shape[:2]
        pad = (-m) % cfg.chunk
        if pad:
            frames = F.pad(frames, (0, 0, 0, 0, 0, pad))
            bands, times, mask = (F.pad(t, (0, pad)) for t in (bands, times, mask))
        frames = frames * mask[..., None, None]
        channels = [frames]
        if self.band_embedding.channels:
            channels.append(self.band_embedding(bands * mask))
        x = torch.stack(channels, dim=2)  # (B, M', C, H, W)
        n = x.shape[1] // cfg.chunk
        chunks = x.unflatten(1, (n, cfg.chunk)).transpose(2, 3)  # (B, N, C, K, H, W)
        frame_mask = mask.unflatten(1, (n, cfg.chunk))
        token_mask = frame_mask.any(dim=2)  # (B, N)
        # The CNN sees real chunks only: padding never enters the BatchNorm statistics.
        real = self.tokenizer(chunks[token_mask])
        tokens = real.new_zeros(b, n, *self.tokenizer.token_shape)
        tokens[token_mask] = real
        weights = frame_mask.float()
        token_times = (times.unflatten(1, (n, cfg.chunk)) * weights).sum(2) / weights.sum(2).clamp(
            min=1
        )
        x = self.positional(tokens, token_times)
        for layer in self.layers:
            x = layer(x, token_mask)
        pooled = x.masked_fill(~token_mask[:, :, None, None, None], float("-inf")).amax(dim=1)
        return self.head(pooled.flatten(1))


PRESETS: dict[str, ConvEntionConfig] = {
    # The published configuration: ~20 GMAC per object, for a GPU.
    "paper": ConvEntionConfig(),
    # Same architecture, narrower and with an early 2x2 spatial stride: trains on the full
    # SDSS-II twin on two CPU cores.
    "cpu": ConvEntionConfig(
        widths=(16, 24, 16),
        kernels=((3, 5, 5), (1, 3, 3), (1, 3, 3), (1, 3, 3)),
        strides=((1, 2, 2), (1, 2, 2), (1, 1, 1), (1, 1, 1)),
        paddings=((0, 2, 2), (0, 1, 1), (0, 0, 0), (0, 0, 0)),
        head_hidden=128,
    ),
    # The smallest member, for tests and quick checks.
    "tiny": ConvEntionConfig(
        widths=(4, 8, 4),
        kernels=((3, 5, 5), (1, 3, 3), (1, 3, 3), (1, 3, 3)),
        strides=((1, 2, 2), (1, 2, 2), (1, 1, 1), (1, 1, 1)),
        paddings=((0, 2, 2), (0, 1, 1), (0, 1, 1), (0, 1, 1)),
        head_hidden=32,
        layers=1,
    ),
}


@register_model("convention", presets=PRESETS, inputs=("stamps",))
def convention(n_classes: int, n_bands: int, config: ConvEntionConfig) -> ConvEntion:
    """ConvEntion (Bairouk et al. 2023): 3D-CNN tokens, convolutional BERT."""
    return ConvEntion(n_classes, n_bands, config)
