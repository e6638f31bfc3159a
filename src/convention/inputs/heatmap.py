"""``heatmap``: one Gaussian-process image of the forced photometry per object (SCONE's
input, Qu et al. 2021). Key: ``heatmap`` (2, wavelength, time) float32, the GP mean and
standard deviation of the frames read (each heatmap scaled on its own: nothing to fit)."""

from __future__ import annotations

import numpy as np
import torch

from convention.baselines.heatmaps import heatmap
from convention.inputs.base import InputKind, Selection, register_input_kind
from convention.inputs.spec import InputSpec


@register_input_kind("heatmap")
class Heatmap(InputKind):
    """The light curve as a (wavelength, time) image."""

    fixed = ("heatmap",)

    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        lc = selection.series[selection.index].to_lightcurve(method="psf", reference="median")
        return {"heatmap": heatmap(lc, self.bands, *self.spec.heatmap_shape)}

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        return f"{spec.heatmap_shape[0]}x{spec.heatmap_shape[1]} heatmap"

    @classmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        return {"heatmap": torch.zeros(1, 2, *spec.heatmap_shape)}
