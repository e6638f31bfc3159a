"""``scone``: a small 2D CNN over a light curve's Gaussian-process heatmap (Qu et al.
2021, AJ 162, 67). Its input (the ``heatmap`` kind) is one (2, wavelength, time) image
per object: the GP mean and standard deviation of the forced photometry."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from convention.inputs.spec import InputSpec
from convention.models.layers.blocks import channels_last, conv_encoder, mlp_head
from convention.models.registry import register_model


@dataclass(frozen=True)
class SconeConfig:
    """Hyper-parameters of the heatmap CNN."""

    wavelength_bins: int = 32
    time_bins: int = 48
    widths: tuple[int, ...] = (16, 32, 32)
    hidden: int = 64
    dropout: float = 0.3
    max_frames: int = 99  # frames the photometry is measured on (the central ones)
    stamp_size: int = 32


class Scone(nn.Module):
    """2D CNN classifier of GP heatmaps.

    Args:
        n_classes: number of output classes (0: no head).
        n_bands: number of bands (unused: the bands are the heatmap's wavelength axis).
        config: architecture.
    """

    def __init__(self, n_classes: int, n_bands: int, config: SconeConfig | None = None):
        super().__init__()
        cfg = config or SconeConfig()
        self.config = cfg
        self.input_spec = InputSpec(
            ("heatmap",), cfg.stamp_size, cfg.max_frames, (cfg.wavelength_bins, cfg.time_bins)
        )
        self.net, self.num_features = conv_encoder(2, cfg.widths)
        self.reset_classifier(n_classes)

    def reset_classifier(self, n_classes: int) -> None:
        """A new, untrained head of ``n_classes`` outputs (0: none)."""
        cfg = self.config
        self.head = (
            mlp_head(self.num_features, cfg.hidden, n_classes, cfg.dropout)
            if n_classes
            else nn.Identity()
        )

    def get_classifier(self) -> nn.Module:
        """The head."""
        return self.head

    def forward(self, heatmap: torch.Tensor) -> torch.Tensor:
        """Class logits from (B, 2, wavelength, time) heatmaps."""
        return self.forward_head(self.forward_features(heatmap))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_classes) logits of (B, num_features) features."""
        return self.head(features)

    def forward_features(self, heatmap: torch.Tensor) -> torch.Tensor:
        """(B, num_features) the CNN's pooled maps of (B, 2, wavelength, time) heatmaps."""
        return self.net(channels_last(heatmap))


PRESETS = {
    "cpu": SconeConfig(),
    "tiny": SconeConfig(wavelength_bins=8, time_bins=12, widths=(4, 8), hidden=16),
}


@register_model("scone", presets=PRESETS, inputs=("heatmap",))
def scone(n_classes: int, n_bands: int, config: SconeConfig) -> Scone:
    """The SCONE idea: a 2D CNN on Gaussian-process heatmaps of the light curve."""
    return Scone(n_classes, n_bands, config)
