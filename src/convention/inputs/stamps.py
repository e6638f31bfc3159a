"""``stamps``: the frames themselves, normalised per band.

Keys: ``frames`` (M, H, W) float32 ``asinh((x - median_b) / scale_b)`` with the pixel
statistics of the training split and NaN pixels set to 0; ``bands`` (M,) int64 band
indices; ``times`` (M,) float32 days since the first frame; ``mask`` (M,) after collation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from convention.data.series import StampSeries
from convention.inputs.base import (
    Augmentation,
    InputKind,
    Needs,
    Selection,
    keep_frames,
    register_input_kind,
    sequence_example,
    turn_images,
)
from convention.inputs.normalisation import Normalisation
from convention.inputs.spec import InputSpec

KEYS = ("frames", "bands", "times", "mask")


@register_input_kind("stamps")
class Stamps(InputKind):
    """The frame sequence (ConvEntion's and the CNN + RNNs' input). Other image sequences
    over the same frames (``difference``) subclass it with their own keys and images."""

    needs = Needs(pixels=True)
    sequence = KEYS[:3]
    mask = KEYS[3]
    spatial = True

    def __init__(self, spec: InputSpec, bands: Sequence[str]):
        super().__init__(spec, bands)
        self.load_state({"normalisation": Normalisation.identity(bands).to_dict()})

    def fit(self, series: Sequence[StampSeries], seed: int) -> None:
        """Per-band pixel median and robust sigma of the training split."""
        self._set(Normalisation.fit_pixels(series, self.bands, seed=seed))

    @property
    def state(self) -> dict:
        return {"normalisation": self.normalisation.to_dict()}

    def load_state(self, state: dict) -> None:
        self._set(Normalisation.from_dict(state["normalisation"], self.bands))

    def _set(self, norm: Normalisation) -> None:
        self.normalisation = norm
        self._median = np.array([0.0, *norm.median], dtype=np.float32)
        self._scale = np.array([1.0, *norm.scale], dtype=np.float32)

    def images(self, selection: Selection) -> np.ndarray:
        """(M, H, W) float32 of the frames read (a copy: ``index`` is an array), before
        normalisation."""
        return selection.series.frames[selection.index].astype(np.float32, copy=False)

    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        bands = selection.bands
        images = self.images(selection)
        images -= self._median[bands, None, None]
        images /= self._scale[bands, None, None]
        np.arcsinh(images, out=images)
        np.copyto(images, 0.0, where=~np.isfinite(images))  # missing pixels: 0
        values, band_key, times = self.sequence
        return {values: images, band_key: bands, times: selection.times}

    def augment(self, arrays: dict[str, np.ndarray], draw: Augmentation) -> dict[str, np.ndarray]:
        kept = keep_frames(arrays, self.sequence, draw.keep)
        values = self.sequence[0]
        return {**kept, values: turn_images(kept[values], draw)}

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        return f"{spec.max_frames} stamps of {spec.stamp_size}x{spec.stamp_size}"

    @classmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        size = spec.stamp_size
        keys = (*cls.sequence, cls.mask)
        return sequence_example(n_frames, torch.zeros(1, n_frames, size, size), keys)
