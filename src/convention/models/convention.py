"""ConvEntion (Bairouk et al. 2023, A&A 673, A141): band embedding, a 3D CNN over chunks of K
frames, a convolutional BERT over the resulting feature-map tokens, and a max-pool head.

Reads top-down: the 3D-CNN tokenizer, the model, its presets, registered constructors.
Three defects of the authors' public code are fixed here: padded tokens are masked in
attention, pooling and normalisation; band index 0 is padding and no real band maps to it;
and sequences of any length (not only multiples of K) are padded and masked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from convention.inputs.spec import InputSpec
from convention.models.layers.attention import ConvTransformerLayer
from convention.models.layers.band_embedding import BandEmbedding
from convention.models.layers.positional import PositionalEncoding
from convention.models.registry import register_model

Triple = tuple[int, int, int]

# The first layer sums each combination of a chunk's bands once (6^3 = 216 for ugriz in
# chunks of 3) when there are at most this many; past it, it gathers per chunk.
MAX_BAND_COMBINATIONS = 1024


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
    attention_dropout: float = 0.1  # on the N x N attention weights
    attention: str = "sum"  # "dot": query-dependent scores (layers.attention), not the paper's
    head_dropout: float = 0.4
    band_embedding: str = "learned"
    positional_encoding: str = "index"
    cnn: str = "3d"  # "2d": the ablation with time kernels of 1 (frames encoded one by one)
    joined_tokens: int = 0  # tokens of other inputs before the frames' (early fusion)

    @property
    def max_tokens(self) -> int:
        """Tokens of the longest sequence: ceil(max_frames / chunk)."""
        return -(-self.max_frames // self.chunk)


class ChunkTokenizer(nn.Module):
    """3D CNN turning a chunk of K frames (C, K, H, W) into one (D, h, w) token.

    When the first layer's time kernel spans the chunk without time padding and every later
    one is 1 (the cpu and tiny presets), each 3D convolution is exactly a 2D one: the first
    over the K x C channels of the chunk's frames, the later ones over its single time step.
    The layers are then Conv2d (1.7x faster forward and backward on CPUs), with the same
    parameters; checkpoints of the 3D layout load unchanged (their weights reshaped).
    The ``2d`` ablation (time kernels of 1) encodes the K frames one by one and averages
    their maps.
    """

    def __init__(self, in_channels: int, cfg: ConvEntionConfig):
        super().__init__()
        widths = (*cfg.widths, cfg.token_channels)
        self.chunk, self.in_channels = cfg.chunk, in_channels
        self.mode = _tokenizer_mode(cfg)
        layers: list[nn.Module] = []
        channels = in_channels
        for k, (width, kernel, stride, pad) in enumerate(
            zip(widths, cfg.kernels, cfg.strides, cfg.paddings, strict=True)
        ):
            if self.mode == "3d":
                layers += [nn.Conv3d(channels, width, kernel, stride, pad), nn.BatchNorm3d(width)]
            else:
                first_2d = k == 0 and self.mode == "2d-chunk"
                conv_in = channels * cfg.chunk if first_2d else channels
                layers += [
                    nn.Conv2d(conv_in, width, kernel[1:], stride[1:], pad[1:]),
                    nn.BatchNorm2d(width),
                ]
            layers.append(nn.ReLU())
            channels = width
        self.net = nn.Sequential(*layers)
        if self.mode != "3d":
            self._register_load_state_dict_pre_hook(self._from_3d_layout)
        steps, h, w = _chunk_output_size(cfg)
        if min(h, w) < 1 or (self.mode == "3d" and steps < 1):
            raise ValueError(
                f"{cfg.stamp_size}x{cfg.stamp_size} stamps are too small for "
                "these kernels and strides"
            )
        if self.mode == "3d" and steps != 1:
            raise ValueError(f"the 3D CNN leaves {steps} time steps, not 1: fix the preset")
        self.token_shape: tuple[int, int, int] = (cfg.token_channels, h, w)

    def forward(
        self, frames: torch.Tensor, bands: torch.Tensor, band_embedding: BandEmbedding
    ) -> torch.Tensor:
        """Tokens of T chunks.

        Args:
            frames: (T, K, H, W) the chunks' frames.
            bands: (T, K) their band indices (0 = padding).
            band_embedding: the model's band embedding (its maps are the second channel
                of every frame, unless it has none).

        Returns:
            (T, D, h, w) tokens.
        """
        band_maps = band_embedding.maps() if band_embedding.channels else None
        if self.mode == "2d-chunk" and band_maps is not None:
            return self.net[1:](self._first_layer(frames, bands, band_maps))
        channels = [frames] if band_maps is None else [frames, band_maps[bands]]
        chunks = torch.stack(channels, dim=1)  # (T, C, K, H, W)
        t, c, k, h, w = chunks.shape
        if self.mode == "2d-chunk":
            return self.net(chunks.reshape(t, c * k, h, w))
        if self.mode == "2d":
            frames = chunks.transpose(1, 2).reshape(t * k, c, h, w)
            return self.net(frames).unflatten(0, (t, k)).mean(dim=1)
        return self.net(chunks)[:, :, 0]

    def _first_layer(
        self, frames: torch.Tensor, bands: torch.Tensor, band_maps: torch.Tensor
    ) -> torch.Tensor:
        """The first convolution over [frames, band maps] of each chunk, split by
        linearity: the frames' part convolves the frames (no input gradient: they are
        data), the band part convolves each band's map once per chunk position and is
        looked up by the chunk's bands. The same sums as one convolution over the stacked
        channels, without the gradient of a (T, 2K, H, W) input."""
        conv, k = self.net[0], self.chunk
        out_channels = conv.out_channels
        y = F.conv2d(frames, conv.weight[:, :k], conv.bias, conv.stride, conv.padding)
        band_weight = (
            conv.weight[:, k:].transpose(0, 1).reshape(k * out_channels, 1, *conv.kernel_size)
        )
        per_band = F.conv2d(band_maps[:, None], band_weight, None, conv.stride, conv.padding)
        per_band = per_band.unflatten(1, (k, out_channels))  # (n_bands + 1, K, out, h, w)
        n_values = per_band.shape[0]
        if n_values**k <= MAX_BAND_COMBINATIONS:
            # Few band combinations: sum each combination's maps once, look it up per chunk.
            # (A fixed choice, not one on the batch's size: the exported graph has one path.)
            combined, code = per_band[:, 0], bands[:, 0]
            for t in range(1, k):
                combined = (combined[:, None] + per_band[None, :, t]).flatten(0, 1)
                code = code * n_values + bands[:, t]
            return y + F.embedding(code, combined.flatten(1)).view_as(y)
        return y + per_band[bands, torch.arange(k, device=bands.device)].sum(dim=1)

    def _from_3d_layout(self, state: dict, prefix: str, *args) -> None:
        """Reshape Conv3d weights (out, C, K, kh, kw) of a checkpoint to this Conv2d's."""
        for name, module in self.net.named_children():
            key = f"{prefix}net.{name}.weight"
            if isinstance(module, nn.Conv2d) and key in state and state[key].dim() == 5:
                weight = state[key]
                state[key] = weight.flatten(1, 2) if weight.shape[2] > 1 else weight[:, :, 0]


def _chunk_output_size(cfg: ConvEntionConfig) -> Triple:
    """(time, y, x) extent of a chunk's map after the 3D CNN, by the convolution size
    formula (no forward pass: a model built on the meta device to count its parameters
    would run it through PyTorch's Python meta kernels, a second to import). An extent
    that falls below 1 stays there."""
    size = (cfg.chunk, cfg.stamp_size, cfg.stamp_size)
    for kernel, stride, pad in zip(cfg.kernels, cfg.strides, cfg.paddings, strict=True):
        size = tuple(
            (n + 2 * p - k) // s + 1 if n >= 1 else n
            for n, k, s, p in zip(size, kernel, stride, pad, strict=True)
        )
    return size


def _tokenizer_mode(cfg: ConvEntionConfig) -> str:
    """``2d-chunk`` when the 3D CNN is a 2D one over the chunk's channels, ``2d`` for the
    ablation with time kernels of 1, else ``3d``."""
    if cfg.cnn == "2d":
        return "2d"
    first, *later = zip(cfg.kernels, cfg.strides, cfg.paddings, strict=True)
    spans_chunk = first[0][0] == cfg.chunk and first[2][0] == 0
    if spans_chunk and all(kernel[0] == 1 and pad[0] == 0 for kernel, _, pad in later):
        return "2d-chunk"
    return "3d"


class ConvEntion(nn.Module):
    """ConvEntion classifier over padded, masked frame sequences.

    Args:
        n_classes: number of output classes; 0 builds no head (``forward`` gives the
            pooled features: a frame-sequence encoder for a larger model).
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
                shape,
                cfg.joined_tokens + cfg.max_tokens,
                cfg.heads,
                cfg.similarity_kernel,
                cfg.ff_hidden,
                cfg.dropout,
                cfg.attention_dropout,
                cfg.attention,
            )
            for _ in range(cfg.layers)
        )
        self.num_features = shape[0] * shape[1] * shape[2]
        self.reset_classifier(n_classes)

    def reset_classifier(self, n_classes: int) -> None:
        """A new, untrained head of ``n_classes`` outputs (0: none)."""
        cfg = self.config
        self.head = (
            nn.Sequential(
                nn.Dropout(cfg.head_dropout),
                nn.Linear(self.num_features, cfg.head_hidden),
                nn.ReLU(),
                nn.Dropout(cfg.head_dropout),
                nn.Linear(cfg.head_hidden, n_classes),
            )
            if n_classes
            else nn.Identity()
        )

    def get_classifier(self) -> nn.Module:
        """The head."""
        return self.head

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
            (B, n_classes) logits ((B, num_features) features without a head).
        """
        return self.forward_head(self.forward_features(frames, bands, times, mask))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_classes) logits of (B, num_features) features."""
        return self.head(features)

    def forward_features(
        self,
        frames: torch.Tensor,
        bands: torch.Tensor,
        times: torch.Tensor,
        mask: torch.Tensor,
        joined: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, num_features) max-pooled token maps, flattened; arguments as ``forward``'s.

        ``joined``: (B, config.joined_tokens, D, h, w) tokens of other inputs (early
        fusion), placed before the frames' so each keeps its position's normalisation;
        the frames' tokens attend to them, and only the frames' are pooled."""
        cfg = self.config
        if (0 if joined is None else joined.shape[1]) != cfg.joined_tokens:
            raise ValueError(f"the model joins {cfg.joined_tokens} tokens to the frames'")
        b, m = frames.shape[:2]
        pad = (-m) % cfg.chunk  # padded unconditionally: one exported graph for any length
        frames = F.pad(frames, (0, 0, 0, 0, 0, pad))
        bands, times, mask = (F.pad(t, (0, pad)) for t in (bands, times, mask))
        frames = frames * mask[..., None, None]
        n = frames.shape[1] // cfg.chunk
        frame_mask = mask.unflatten(1, (n, cfg.chunk))
        token_mask = frame_mask.any(dim=2)  # (B, N)
        chunks = frames.unflatten(1, (n, cfg.chunk))
        chunk_bands = (bands * mask).unflatten(1, (n, cfg.chunk))
        if self.training:
            # The CNN sees real chunks only: padding never enters the BatchNorm statistics.
            real = self.tokenizer(chunks[token_mask], chunk_bands[token_mask], self.band_embedding)
            tokens = real.new_zeros(b, n, *self.tokenizer.token_shape)
            tokens[token_mask] = real
        else:
            # BatchNorm uses its running statistics: every chunk goes through the CNN, so no
            # shape depends on the data (one graph for ONNX). Padded tokens stay masked.
            tokens = self.tokenizer(
                chunks.flatten(0, 1), chunk_bands.flatten(0, 1), self.band_embedding
            ).unflatten(0, (b, n))
        weights = frame_mask.float()
        token_times = (times.unflatten(1, (n, cfg.chunk)) * weights).sum(2) / weights.sum(2).clamp(
            min=1
        )
        x = self.positional(tokens, token_times)
        attended = token_mask
        if joined is not None:
            x = torch.cat([joined.to(x.dtype), x], dim=1)
            attended = F.pad(token_mask, (cfg.joined_tokens, 0), value=True)
        for layer in self.layers:
            x = layer(x, attended)
        x = x[:, cfg.joined_tokens :]
        pooled = x.masked_fill(~token_mask[:, :, None, None, None], float("-inf")).amax(dim=1)
        return pooled.flatten(1)


# Same architecture, narrower and with an early 2x2 spatial stride: trains on the full
# SDSS-II twin on two CPU cores. No dropout on the attention weights: without it the
# attention is computed without N x N maps (see layers.attention), 1.6x faster steps.
_CPU = ConvEntionConfig(
    attention_dropout=0.0,
    widths=(16, 24, 16),
    kernels=((3, 5, 5), (1, 3, 3), (1, 3, 3), (1, 3, 3)),
    strides=((1, 2, 2), (1, 2, 2), (1, 1, 1), (1, 1, 1)),
    paddings=((0, 2, 2), (0, 1, 1), (0, 0, 0), (0, 0, 0)),
    head_hidden=128,
)

PRESETS: dict[str, ConvEntionConfig] = {
    # The published configuration: ~20 GMAC per object, for a GPU.
    "paper": ConvEntionConfig(),
    "cpu": _CPU,
    # The cpu preset with an attention that depends on its query (not the paper's).
    "cpu-dot": replace(_CPU, attention="dot"),
    # The smallest member, for tests and quick checks.
    "tiny": ConvEntionConfig(
        attention_dropout=0.0,
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
