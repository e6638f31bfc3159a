"""The flagship: ConvEntion over the frames, joined with the static scene, the light curve
and the practitioners' features.

Up to eight encoders, each over one declared input kind, fused late:
- frames (``stamps``): ConvEntion without its head (band embedding, 3D-CNN chunk tokens,
  convolutional BERT, max-pooled token maps);
- differences (``difference``, not read by default): a second ConvEntion of the same
  preset over the difference stamps (each frame less its PSF-matched reference: the
  transient without its host), read beside the frames or in their place;
- scene (``scene``): each band's reference (median) stamp, which carries the host galaxy,
  through a small 2D CNN whose last map is flattened (position kept: the host's offset
  from the source at the centre matters);
- light curve (``lightcurve``): the forced photometry of the frames less the reference
  (flux, error, band, time) as tokens of a transformer, mean-pooled;
- features (``features``): the boosting baseline's light-curve features and each band's
  reference-stamp features, robustly scaled, with their missing-value flags, through an MLP;
- photometry (``photometry``, not read by default): the source's own light curve with its
  non-detections (an alert packet's 30 days of ``prv_candidates``) through a second
  transformer of the light curve's shape;
- metadata (``metadata``, not read by default): the catalogue fields of the object (the
  nearest Pan-STARRS1 source's star/galaxy score and distance, the nearest
  reference-image source's distance, the host's redshift and its error, the Milky Way
  E(B-V)) and its Galactic latitude, robustly scaled with their missing flags, through a
  small MLP;
- luminosity (``luminosity``, not read by default): each band's peak absolute magnitude,
  the forced light curve's peak less the distance modulus of the host's redshift, robustly
  scaled with its missing flags, through a small MLP: the product of flux and distance
  that tells an SN Ia from most other supernovae, which the separately scaled light curve
  and metadata give the head only through its layers.
Their outputs (and which scene bands are present) are concatenated and classified by an
MLP. ``inputs`` leaves encoders out: the ablations (their scores are in
``benchmarks/results/sdss2-twin-flagship``). During training each present encoder's
features are zeroed with probability ``modality_dropout`` per object (never all of them),
so no encoder is leant on alone.

With ``fusion="early"`` (the ``cpu-early`` preset) the other encoders' outputs also enter
the frames' attention: each is mapped by a linear layer to one token of the frames' token
shape, placed before the frames' tokens, so every frame token can attend to the host, the
light curve and the catalogue fields as it attends to other nights. The late
concatenation stays.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from convention.inputs.encoder import example_inputs
from convention.inputs.spec import InputSpec
from convention.models.convention import PRESETS as CONVENTION_PRESETS
from convention.models.convention import ConvEntion
from convention.models.layers.blocks import conv_stack
from convention.models.lightcurve import LightCurveClassifier, LightCurveConfig
from convention.models.registry import register_model

KINDS = (
    "stamps",
    "scene",
    "lightcurve",
    "features",
    "photometry",
    "metadata",
    "luminosity",
    "difference",
)
FUSIONS = ("late", "early")
# The photometry and metadata are the alert models' (``convention demo --survey ztf``); the
# metadata also the suites' "flagship + metadata" row, the luminosity its
# "flagship + metadata + absolute magnitudes".
DEFAULT_INPUTS = KINDS[:4]


@dataclass(frozen=True)
class MultiInputConfig:
    """Hyper-parameters of the multi-input ConvEntion.

    ``frames_preset`` names the ConvEntion preset of the frame encoder; ``stamp_size`` and
    ``max_frames``, when set, replace that preset's (they are the whole model's); ``inputs``
    the encoders used, a subset of ``KINDS``; ``fusion`` one of ``FUSIONS`` (see the
    module).
    """

    inputs: tuple[str, ...] = DEFAULT_INPUTS
    frames_preset: str = "cpu"
    stamp_size: int | None = None
    max_frames: int | None = None
    scene_widths: tuple[int, ...] = (16, 32, 32)
    scene_features: int = 64
    lc_hidden: int = 64
    lc_layers: int = 2
    lc_heads: int = 4
    features_hidden: int = 128
    metadata_hidden: int = 32
    luminosity_hidden: int = 16
    head_hidden: int = 128
    dropout: float = 0.3
    modality_dropout: float = 0.1
    fusion: str = "late"


class SceneEncoder(nn.Module):
    """(B, n_bands, H, W) reference stamps -> (B, features): 3x3 conv + BatchNorm + ReLU +
    2x2 max-pool per width, the last map flattened, one linear layer."""

    def __init__(self, n_bands: int, size: int, widths: tuple[int, ...], features: int):
        super().__init__()
        size //= 2 ** len(widths)
        if size < 1:
            raise ValueError(f"{len(widths)} pooling steps leave nothing of the scene")
        self.net = nn.Sequential(
            *conv_stack(n_bands, widths),
            nn.Flatten(),
            nn.Linear(widths[-1] * size * size, features),
        )

    def forward(self, scene: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.net(scene))


def _mlp(n_in: int, hidden: int, n_out: int, dropout: float = 0.0) -> nn.Sequential:
    """Linear + ReLU (+ dropout), Linear + ReLU: (B, n_in) -> (B, n_out)."""
    layers: list[nn.Module] = [nn.Linear(n_in, hidden), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(hidden, n_out), nn.ReLU())


class MultiInputConvEntion(nn.Module):
    """ConvEntion with the scene and the light curve (see the module's docstring).

    Args:
        n_classes: number of output classes (0: no head).
        n_bands: number of real bands (band indices 1..n_bands, 0 = padding).
        config: architecture.
    """

    def __init__(self, n_classes: int, n_bands: int, config: MultiInputConfig | None = None):
        super().__init__()
        cfg = config or MultiInputConfig()
        inputs = tuple(cfg.inputs)
        unknown = sorted(set(inputs) - set(KINDS))
        if unknown or not inputs:
            raise ValueError(f"inputs must be a non-empty subset of {KINDS}, got {list(inputs)}")
        if cfg.frames_preset not in CONVENTION_PRESETS:
            raise ValueError(
                f"frames_preset must be one of {sorted(CONVENTION_PRESETS)}, "
                f"got {cfg.frames_preset!r}"
            )
        if cfg.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {cfg.fusion!r}")
        joined = [k for k in inputs if k != "stamps"] if cfg.fusion == "early" else []
        if joined and "stamps" not in inputs:
            raise ValueError("early fusion joins the other inputs to the frames: read stamps")
        self.config = replace(cfg, inputs=inputs)
        frames_cfg = CONVENTION_PRESETS[cfg.frames_preset]
        sizes = {"stamp_size": cfg.stamp_size, "max_frames": cfg.max_frames}
        frames_cfg = replace(frames_cfg, **{k: v for k, v in sizes.items() if v is not None})
        frames_cfg = replace(frames_cfg, joined_tokens=len(joined))
        size, max_frames = frames_cfg.stamp_size, frames_cfg.max_frames
        self.input_spec = InputSpec(tuple(k for k in KINDS if k in inputs), size, max_frames)
        widths = {}
        if "stamps" in inputs:
            self.frames = ConvEntion(0, n_bands, frames_cfg)
            widths["stamps"] = self.frames.num_features
        if "scene" in inputs:
            self.scene = SceneEncoder(n_bands, size, cfg.scene_widths, cfg.scene_features)
            widths["scene"] = cfg.scene_features + n_bands
        lc_cfg = LightCurveConfig(
            architecture="transformer",
            max_frames=max_frames,
            stamp_size=size,
            hidden=cfg.lc_hidden,
            layers=cfg.lc_layers,
            heads=cfg.lc_heads,
        )
        if "lightcurve" in inputs:
            self.lightcurve = LightCurveClassifier(0, n_bands, lc_cfg)
            widths["lightcurve"] = cfg.lc_hidden
        example = example_inputs(self.input_spec, n_bands, 1)
        if "features" in inputs:
            self.features = _mlp(
                example["features"].shape[1],
                cfg.features_hidden,
                cfg.features_hidden // 2,
                cfg.dropout,
            )
            widths["features"] = cfg.features_hidden // 2
        if "photometry" in inputs:
            values = example["phot"].shape[-1]
            self.photometry = LightCurveClassifier(0, n_bands, replace(lc_cfg, values=values))
            widths["photometry"] = cfg.lc_hidden
        if "metadata" in inputs:
            n_fields = example["metadata"].shape[1]
            self.metadata = _mlp(n_fields, cfg.metadata_hidden, cfg.metadata_hidden)
            widths["metadata"] = cfg.metadata_hidden
        if "luminosity" in inputs:
            n_values = example["luminosity"].shape[1]
            self.luminosity = _mlp(n_values, cfg.luminosity_hidden, cfg.luminosity_hidden)
            widths["luminosity"] = cfg.luminosity_hidden
        if "difference" in inputs:
            self.difference = ConvEntion(0, n_bands, replace(frames_cfg, joined_tokens=0))
            widths["difference"] = self.difference.num_features
        self._widths = widths
        self.num_features = sum(widths.values())
        # Early fusion: each other encoder's output as one token of the frames' shape.
        token = self.frames.tokenizer.token_shape if joined else (0, 0, 0)
        self.to_token = nn.ModuleDict(
            {kind: nn.Linear(widths[kind], token[0] * token[1] * token[2]) for kind in joined}
        )
        self.reset_classifier(n_classes)

    def reset_classifier(self, n_classes: int) -> None:
        """A new, untrained head of ``n_classes`` outputs (0: none)."""
        cfg = self.config
        self.head = (
            nn.Sequential(
                nn.Dropout(cfg.dropout),
                nn.Linear(self.num_features, cfg.head_hidden),
                nn.ReLU(),
                nn.Dropout(cfg.dropout),
                nn.Linear(cfg.head_hidden, n_classes),
            )
            if n_classes
            else nn.Identity()
        )

    def get_classifier(self) -> nn.Module:
        """The head."""
        return self.head

    def forward(self, **inputs: torch.Tensor) -> torch.Tensor:
        """(B, n_classes) class logits from the inputs of ``forward_features``."""
        return self.forward_head(self.forward_features(**inputs))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """(B, n_classes) logits of (B, num_features) fused features."""
        return self.head(features)

    def forward_features(
        self,
        frames: torch.Tensor | None = None,
        bands: torch.Tensor | None = None,
        times: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        scene: torch.Tensor | None = None,
        scene_mask: torch.Tensor | None = None,
        lc: torch.Tensor | None = None,
        lc_bands: torch.Tensor | None = None,
        lc_times: torch.Tensor | None = None,
        lc_mask: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
        phot: torch.Tensor | None = None,
        phot_bands: torch.Tensor | None = None,
        phot_times: torch.Tensor | None = None,
        phot_mask: torch.Tensor | None = None,
        metadata: torch.Tensor | None = None,
        luminosity: torch.Tensor | None = None,
        diff: torch.Tensor | None = None,
        diff_bands: torch.Tensor | None = None,
        diff_times: torch.Tensor | None = None,
        diff_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The fused features of the inputs of the kinds in ``config.inputs``: every
        encoder's output side by side, what the head classifies (and what contrastive
        pre-training learns, ``convention.training.pretrain``).

        Args:
            frames, bands, times, mask: the frame sequence, as ConvEntion's.
            scene: (B, n_bands, H, W) normalised reference stamps; scene_mask: (B, n_bands)
                True where a band has a reference (its map is zeros otherwise).
            lc, lc_bands, lc_times, lc_mask: the light curve, as ``lc-transformer``'s.
            features: (B, 2F) the ``features`` input (scaled values, missing flags).
            phot, phot_bands, phot_times, phot_mask: the source's photometry (``phot``
                (B, P, 3)), as ``lc-transformer``'s light curve.
            metadata: (B, 2F) the ``metadata`` input (scaled fields, missing flags).
            luminosity: (B, 2 n_bands) the ``luminosity`` input (scaled absolute
                magnitudes, missing flags).
            diff, diff_bands, diff_times, diff_mask: the difference stamps, as ConvEntion's
                frame sequence.

        Returns:
            (B, num_features) features.
        """
        # Late fusion runs the frames first, early fusion last (they read the others'
        # tokens): the order in which the encoders draw their dropout, kept as it was.
        early = len(self.to_token) > 0
        parts = {}
        if "stamps" in self._widths and not early:
            parts["stamps"] = self.frames.forward_features(frames, bands, times, mask)
        if "scene" in self._widths:
            present = scene_mask.to(scene.dtype)
            parts["scene"] = torch.cat([self.scene(scene * present[..., None, None]), present], 1)
        if "lightcurve" in self._widths:
            parts["lightcurve"] = self.lightcurve.forward_features(lc, lc_bands, lc_times, lc_mask)
        if "features" in self._widths:
            parts["features"] = self.features(features)
        if "photometry" in self._widths:
            parts["photometry"] = self.photometry.forward_features(
                phot, phot_bands, phot_times, phot_mask
            )
        if "metadata" in self._widths:
            parts["metadata"] = self.metadata(metadata)
        if "luminosity" in self._widths:
            parts["luminosity"] = self.luminosity(luminosity)
        if "difference" in self._widths:
            parts["difference"] = self.difference.forward_features(
                diff, diff_bands, diff_times, diff_mask
            )
        first = next(iter(parts.values()))
        keep = self._kept_modalities(first.shape[0], first.device)
        if keep is not None:
            parts = {kind: part * keep[kind].to(part.dtype) for kind, part in parts.items()}
        if early:
            shape = self.frames.tokenizer.token_shape
            joined = torch.stack(
                [self.to_token[kind](parts[kind]).unflatten(1, shape) for kind in self.to_token],
                dim=1,
            )
            stamps = self.frames.forward_features(frames, bands, times, mask, joined)
            parts["stamps"] = stamps if keep is None else stamps * keep["stamps"].to(stamps.dtype)
        return torch.cat([parts[kind] for kind in self._widths], dim=1)

    def _kept_modalities(self, b: int, device: torch.device) -> dict[str, torch.Tensor] | None:
        """Modality dropout in training: per encoder, (B, 1) booleans, each False with
        probability ``modality_dropout``, at least one encoder of every object kept; None
        outside training or with one encoder."""
        kinds = list(self._widths)
        if not (self.training and self.config.modality_dropout > 0 and len(kinds) > 1):
            return None
        keep = torch.rand(b, len(kinds), device=device)
        keep = keep >= self.config.modality_dropout
        none = ~keep.any(dim=1)
        keep[none, torch.randint(len(kinds), (int(none.sum()),), device=keep.device)] = True
        return {kind: keep[:, k, None] for k, kind in enumerate(kinds)}


PRESETS: dict[str, MultiInputConfig] = {
    "cpu": MultiInputConfig(),
    # The other inputs also join the frames' attention as tokens (the module's docstring).
    "cpu-early": MultiInputConfig(fusion="early"),
    # On a GPU: the paper's ConvEntion over the frames.
    "paper": MultiInputConfig(frames_preset="paper"),
    "tiny": MultiInputConfig(
        frames_preset="tiny",
        scene_widths=(4, 8),
        scene_features=16,
        lc_hidden=16,
        lc_layers=1,
        lc_heads=2,
        head_hidden=32,
    ),
}


@register_model("convention-multi", presets=PRESETS, inputs=KINDS)
def convention_multi(
    n_classes: int, n_bands: int, config: MultiInputConfig
) -> MultiInputConvEntion:
    """ConvEntion + reference stamps (host) + forced-photometry light curve, fused late."""
    return MultiInputConvEntion(n_classes, n_bands, config)
