"""Light-curve baselines: networks over the forced photometry of the stamps, one step per
frame (the ``lightcurve`` input kind: each step is ``asinh(flux / s_b), log(err / s_b)``).

``lc-lstm`` is the recurrent classifier of SuperNNova's kind (Moller & de Boissiere 2020)
in this training system: flux, error, band and the time since the previous point per step.
``lc-transformer`` follows the SITS-BERT idea (Yuan & Lin 2021): each observation embedded
with its band, a sinusoidal encoding of its time in days, self-attention over the
sequence, masked mean pooling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from convention.inputs.spec import InputSpec
from convention.models.layers.blocks import mlp_head
from convention.models.layers.recurrence import last_state
from convention.models.registry import register_model


@dataclass(frozen=True)
class LightCurveConfig:
    """Hyper-parameters of a light-curve sequence classifier."""

    architecture: str = "lstm"  # or "transformer"
    max_frames: int = 99
    stamp_size: int = 32  # the stamps the photometry is measured on (any size works)
    values: int = 2  # numbers per point: the ``lightcurve`` kind's 2 (``photometry``: 3)
    band_dim: int = 8
    hidden: int = 64
    layers: int = 2
    heads: int = 4
    dropout: float = 0.1


def _time_encoding(times: torch.Tensor, dim: int, max_days: float = 1000.0) -> torch.Tensor:
    """(B, M) days -> (B, M, dim) sinusoids of periods from 1 day to ``max_days``."""
    half = dim // 2
    periods = torch.logspace(0, math.log10(max_days), half, device=times.device)
    angles = 2 * math.pi * times[..., None] / periods
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class LightCurveClassifier(nn.Module):
    """An LSTM or a transformer over light-curve points.

    Args:
        n_classes: number of output classes; 0 builds no head (``forward`` gives the
            pooled features: a light-curve encoder for a larger model).
        n_bands: number of real bands (band indices 1..n_bands, 0 = padding).
        config: architecture.
    """

    def __init__(self, n_classes: int, n_bands: int, config: LightCurveConfig | None = None):
        super().__init__()
        cfg = config or LightCurveConfig()
        if cfg.architecture not in ("lstm", "transformer"):
            raise ValueError(f"architecture must be lstm or transformer, got {cfg.architecture!r}")
        self.config = cfg
        self.input_spec = InputSpec(("lightcurve",), cfg.stamp_size, cfg.max_frames)
        self.bands = nn.Embedding(n_bands + 1, cfg.band_dim, padding_idx=0)
        if cfg.architecture == "lstm":
            self.rnn = nn.LSTM(
                cfg.values + cfg.band_dim + 1,
                cfg.hidden,
                num_layers=cfg.layers,
                batch_first=True,
                dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            )
        else:
            self.embed = nn.Linear(cfg.values + cfg.band_dim, cfg.hidden)
            layer = nn.TransformerEncoderLayer(
                cfg.hidden,
                cfg.heads,
                dim_feedforward=2 * cfg.hidden,
                dropout=cfg.dropout,
                batch_first=True,
                norm_first=True,
            )
            self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
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
        lc: torch.Tensor,
        lc_bands: torch.Tensor,
        lc_times: torch.Tensor,
        lc_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Class logits.

        Args:
            lc: (B, M, values) light-curve features, valid points first, zeros after.
            lc_bands: (B, M) band indices, 0 for padding.
            lc_times: (B, M) days since the first point.
            lc_mask: (B, M) True for real points; every sequence needs at least one.

        Returns:
            (B, n_classes) logits ((B, num_features) features without a head).
        """
        return self.forward_head(self.forward_features(lc, lc_bands, lc_times, lc_mask))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_classes) logits of (B, num_features) features."""
        return self.head(features)

    def forward_features(
        self,
        lc: torch.Tensor,
        lc_bands: torch.Tensor,
        lc_times: torch.Tensor,
        lc_mask: torch.Tensor,
    ) -> torch.Tensor:
        """(B, num_features) the last hidden state (LSTM) or the masked mean of the
        encoded points (transformer); arguments as ``forward``'s."""
        mask = lc_mask
        steps = torch.cat([lc, self.bands(lc_bands * mask)], dim=-1)
        if self.config.architecture == "lstm":
            gaps = torch.diff(lc_times, dim=1, prepend=lc_times[:, :1]).clamp(min=0)
            steps = torch.cat([steps, torch.log1p(gaps)[..., None]], dim=-1)
            return last_state(self.rnn, steps, mask)
        x = self.embed(steps) + _time_encoding(lc_times, self.config.hidden)
        x = self.encoder(x, src_key_padding_mask=~mask)
        weights = mask[..., None].float()
        return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


PRESETS: dict[str, LightCurveConfig] = {
    "cpu": LightCurveConfig(),
    "tiny": LightCurveConfig(band_dim=4, hidden=16, layers=1, heads=2),
}


def _with_architecture(architecture: str) -> dict[str, LightCurveConfig]:
    return {name: replace(cfg, architecture=architecture) for name, cfg in PRESETS.items()}


@register_model("lc-lstm", presets=_with_architecture("lstm"), inputs=("lightcurve",))
def lc_lstm(n_classes: int, n_bands: int, config: LightCurveConfig) -> LightCurveClassifier:
    """LSTM over forced-photometry light curves (flux, error, band, time step)."""
    return LightCurveClassifier(n_classes, n_bands, config)


@register_model("lc-transformer", presets=_with_architecture("transformer"), inputs=("lightcurve",))
def lc_transformer(n_classes: int, n_bands: int, config: LightCurveConfig) -> LightCurveClassifier:
    """Transformer over light-curve observations with a time encoding (SITS-BERT idea)."""
    return LightCurveClassifier(n_classes, n_bands, config)
