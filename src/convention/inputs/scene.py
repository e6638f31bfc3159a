"""``scene``: the static sky of the object, each band's reference stamp
(``Selection.references``).

A template made before the transient (the source's) holds what does not vary (the host
galaxy, its size, colour and offset from the source, or its absence) and none of the
transient; the median-of-frames fallback (all the object's frames in the band, as the
light curve's reference) removes most of it. Keys:
``scene`` (n_bands, H, W) float32, ``asinh((x - median_b) / scale_b)`` with the pixel
statistics of the training split (NaN pixels 0); ``scene_mask`` (n_bands,) bool, False for
a band without a frame or whose frames are NaN everywhere (its map is zeros).
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
    register_input_kind,
    turn_images,
)
from convention.inputs.normalisation import Normalisation
from convention.inputs.spec import InputSpec

KEYS = ("scene", "scene_mask")


@register_input_kind("scene")
class Scene(InputKind):
    """The reference stamp of every band (the host galaxy)."""

    needs = Needs(pixels=True, references=True)
    fixed = KEYS
    spatial = True

    def __init__(self, spec: InputSpec, bands: Sequence[str]):
        super().__init__(spec, bands)
        self.load_state({"normalisation": Normalisation.identity(bands).to_dict()})

    def fit(self, series: Sequence[StampSeries], seed: int) -> None:
        """Per-band pixel median and robust sigma of the training split's frames."""
        self.load_state(
            {"normalisation": Normalisation.fit_pixels(series, self.bands, seed=seed).to_dict()}
        )

    @property
    def state(self) -> dict:
        return {"normalisation": self.normalisation.to_dict()}

    def load_state(self, state: dict) -> None:
        self.normalisation = Normalisation.from_dict(state["normalisation"], self.bands)
        self._median = np.asarray(self.normalisation.median, dtype=np.float32)[:, None, None]
        self._scale = np.asarray(self.normalisation.scale, dtype=np.float32)[:, None, None]

    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        size = self.spec.stamp_size
        reference = np.full((len(self.bands), size, size), np.nan, dtype=np.float32)
        for k, band in enumerate(self.band_ids):
            band_reference = selection.references.get(band)
            if band_reference is not None:
                reference[k] = band_reference.stamp
        valid = np.isfinite(reference).any(axis=(1, 2))
        scene = np.arcsinh((reference - self._median) / self._scale)
        np.copyto(scene, 0.0, where=np.isnan(scene))
        return {"scene": scene, "scene_mask": valid}

    def augment(self, arrays: dict[str, np.ndarray], draw: Augmentation) -> dict[str, np.ndarray]:
        return {**arrays, "scene": turn_images(arrays["scene"], draw)}

    def incomplete(self, arrays: dict[str, np.ndarray]) -> bool:
        """A band without a usable reference."""
        return not arrays["scene_mask"].all()

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        return f"reference stamps of {spec.stamp_size}x{spec.stamp_size}"

    @classmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        size = spec.stamp_size
        return {
            "scene": torch.zeros(1, n_bands, size, size),
            "scene_mask": torch.ones(1, n_bands, dtype=torch.bool),
        }
