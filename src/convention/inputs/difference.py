"""``difference``: each frame less its band's reference, the transient alone.

A survey finds its transients on difference images: the frame less its template, the
sharper of the two convolved to the other's PSF. A source that gives them (ZTF's
``cutoutDifference``, read as the ``difference`` channel) is read as it is; otherwise
each frame read is differenced against its band's reference exactly as forced photometry
measures it (``photometry.difference_stamps``), so the host galaxy and any quiescent
source leave the stamps and the light that changes stays.

Keys: ``diff`` (M, H, W) float32 ``asinh(d / scale_b)``, ``scale_b`` the robust sigma of
the band's frame pixels on the training split (a difference has no level of its own:
median 0), missing pixels 0; ``diff_bands`` (M,) int64 band indices; ``diff_times`` (M,)
float32 days since the first frame; ``diff_mask`` (M,) after collation. The frames are
those the ``stamps`` kind reads.
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
from convention.photometry import DIFFERENCE_CHANNEL, difference_stamps

KEYS = ("diff", "diff_bands", "diff_times", "diff_mask")


@register_input_kind("difference")
class Difference(InputKind):
    """The difference-stamp sequence (the source's, else frame less PSF-matched reference)."""

    needs = Needs(pixels=True, references=True)
    sequence = KEYS[:3]
    mask = KEYS[3]
    spatial = True

    def __init__(self, spec: InputSpec, bands: Sequence[str]):
        super().__init__(spec, bands)
        self.load_state({"normalisation": Normalisation.identity(bands).to_dict()})

    def fit(self, series: Sequence[StampSeries], seed: int) -> None:
        """Per-band robust sigma of the training split's frame pixels, median 0."""
        pixels = Normalisation.fit_pixels(series, self.bands, seed=seed)
        self._set(Normalisation(pixels.bands, (0.0,) * len(pixels.bands), pixels.scale))

    @property
    def state(self) -> dict:
        return {"normalisation": self.normalisation.to_dict()}

    def load_state(self, state: dict) -> None:
        self._set(Normalisation.from_dict(state["normalisation"], self.bands))

    def _set(self, norm: Normalisation) -> None:
        self.normalisation = norm
        self._median = np.array([0.0, *norm.median], dtype=np.float32)
        self._scale = np.array([1.0, *norm.scale], dtype=np.float32)

    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        series, bands = selection.series, selection.bands
        if DIFFERENCE_CHANNEL in series.channels:
            diff = series.channels[DIFFERENCE_CHANNEL][selection.index].astype(np.float32)
        else:
            read = series[selection.index]
            diff = difference_stamps(read, selection.references).astype(np.float32)
        diff -= self._median[bands, None, None]
        diff /= self._scale[bands, None, None]
        np.arcsinh(diff, out=diff)
        np.copyto(diff, 0.0, where=~np.isfinite(diff))  # missing pixels: 0
        return {"diff": diff, "diff_bands": bands, "diff_times": selection.times}

    def augment(self, arrays: dict[str, np.ndarray], draw: Augmentation) -> dict[str, np.ndarray]:
        kept = keep_frames(arrays, self.sequence, draw.keep)
        return {**kept, "diff": turn_images(kept["diff"], draw)}

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        return f"{spec.max_frames} difference stamps of {spec.stamp_size}x{spec.stamp_size}"

    @classmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        size = spec.stamp_size
        return sequence_example(n_frames, torch.zeros(1, n_frames, size, size), KEYS)
