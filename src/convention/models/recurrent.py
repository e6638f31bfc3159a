"""The image-sequence baselines of the paper's comparison: a 2D CNN encodes every frame on
its own, a recurrent network reads the frame codes in time order.

``cnn-lstm`` follows the recurrent convolutional network of Carrasco-Davis et al. (2019,
PASP 131, 108006) and ``cnn-gru`` the CNN + GRU of Gomez et al. (2020, MNRAS 499, 3130).
Both take the same inputs as ConvEntion (frames, band indices, times, mask) and the same
band embedding as a second image channel; the time since the previous frame enters the
recurrent network beside each frame's code, since the frames are unevenly spaced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from convention.inputs.spec import InputSpec
from convention.models.layers.band_embedding import BandEmbedding
from convention.models.layers.blocks import channels_last, conv_encoder, mlp_head
from convention.models.layers.recurrence import last_state
from convention.models.registry import register_model


@dataclass(frozen=True)
class RecurrentConfig:
    """Hyper-parameters of a CNN + RNN sequence classifier."""

    stamp_size: int = 32
    max_frames: int = 99
    widths: tuple[int, ...] = (16, 32, 32)  # conv 3x3 + BatchNorm + ReLU + 2x2 max-pool each
    features: int = 64  # per-frame code
    hidden: int = 64
    layers: int = 1
    cell: str = "lstm"  # or "gru"
    band_embedding: str = "learned"
    dropout: float = 0.2


class FrameEncoder(nn.Module):
    """2D CNN: (F, C, H, W) frames -> (F, features) codes."""

    def __init__(self, in_channels: int, cfg: RecurrentConfig):
        super().__init__()
        cnn, channels = conv_encoder(in_channels, cfg.widths)
        self.net = nn.Sequential(cnn, nn.Linear(channels, cfg.features))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(channels_last(frames))


class CnnRnn(nn.Module):
    """CNN per frame, then an LSTM or GRU over time; the last hidden state is classified.

    Args:
        n_classes: number of output classes (0: no head).
        n_bands: number of real bands (band indices 1..n_bands, 0 = padding).
        config: architecture.
    """

    def __init__(self, n_classes: int, n_bands: int, config: RecurrentConfig | None = None):
        super().__init__()
        cfg = config or RecurrentConfig()
        if cfg.cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be lstm or gru, got {cfg.cell!r}")
        self.config = cfg
        self.input_spec = InputSpec(("stamps",), cfg.stamp_size, cfg.max_frames)
        self.band_embedding = BandEmbedding(n_bands, cfg.stamp_size, cfg.band_embedding)
        self.encoder = FrameEncoder(1 + self.band_embedding.channels, cfg)
        rnn = nn.LSTM if cfg.cell == "lstm" else nn.GRU
        self.rnn = rnn(
            cfg.features + 1,
            cfg.hidden,
            num_layers=cfg.layers,
            batch_first=True,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
        )
        self.num_features = cfg.hidden
        self.reset_classifier(n_classes)

    def reset_classifier(self, n_classes: int) -> None:
        """A new, untrained head of ``n_classes`` outputs (0: none)."""
        cfg = self.config
        self.head = (
            mlp_head(cfg.hidden, cfg.hidden, n_classes, cfg.dropout) if n_classes else nn.Identity()
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
            (B, n_classes) logits.
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
    ) -> torch.Tensor:
        """(B, num_features) the recurrent network's last state; arguments as
        ``forward``'s."""
        b, m = frames.shape[:2]
        channels = [frames]
        if self.band_embedding.channels:
            channels.append(self.band_embedding(bands * mask))
        x = torch.stack(channels, dim=2)  # (B, M, C, H, W)
        if self.training:
            # The CNN sees real frames only: padding never enters the BatchNorm statistics.
            real = self.encoder(x[mask])
            codes = real.new_zeros(b, m, self.config.features)
            codes[mask] = real
        else:
            # BatchNorm uses its running statistics: every frame goes through the CNN, so
            # no shape depends on the data (one graph for ONNX); padding is never read.
            codes = self.encoder(x.flatten(0, 1)).unflatten(0, (b, m))
        gaps = torch.diff(times, dim=1, prepend=times[:, :1]).clamp(min=0)
        steps = torch.cat([codes, torch.log1p(gaps)[..., None]], dim=-1)
        return last_state(self.rnn, steps, mask)


PRESETS: dict[str, RecurrentConfig] = {
    # About the cost of ConvEntion's cpu preset (~0.1 GFLOPs per object): two CPU cores.
    "cpu": RecurrentConfig(widths=(8, 16, 16), features=32),
    "tiny": RecurrentConfig(widths=(4, 8), features=16, hidden=16),
}


def _with_cell(cell: str) -> dict[str, RecurrentConfig]:
    return {name: replace(cfg, cell=cell) for name, cfg in PRESETS.items()}


@register_model("cnn-lstm", presets=_with_cell("lstm"), inputs=("stamps",))
def cnn_lstm(n_classes: int, n_bands: int, config: RecurrentConfig) -> CnnRnn:
    """Per-frame CNN + LSTM (Carrasco-Davis et al. 2019)."""
    return CnnRnn(n_classes, n_bands, config)


@register_model("cnn-gru", presets=_with_cell("gru"), inputs=("stamps",))
def cnn_gru(n_classes: int, n_bands: int, config: RecurrentConfig) -> CnnRnn:
    """Per-frame CNN + GRU (Gomez et al. 2020)."""
    return CnnRnn(n_classes, n_bands, config)
