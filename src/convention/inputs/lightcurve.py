"""``lightcurve``: forced PSF photometry of every frame read, one step per frame.

Each step is ``(asinh(flux / s_b), log(flux_err / s_b))`` of the frame's PSF flux on the
stamps less each band's reference stamp (``lightcurves.FORCED_PSF``: difference fluxes),
with ``s_b`` the band's median flux error on the training split. Keys: ``lc`` (M, 2)
float32, ``lc_bands`` (M,) int64, ``lc_times`` (M,) float32 days since the first point;
``lc_mask`` (M,) after collation.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice

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
)
from convention.inputs.normalisation import Normalisation
from convention.inputs.spec import InputSpec
from convention.lightcurves import FORCED_PSF, lightcurve_of

KEYS = ("lc", "lc_bands", "lc_times", "lc_mask")
FIT_OBJECTS = 2000  # objects whose flux errors set the scales


@register_input_kind("lightcurve")
class LightCurve(InputKind):
    """The forced-photometry light curve of the stamps (the light-curve networks' input)."""

    needs = Needs(photometry=(FORCED_PSF,))
    sequence = KEYS[:3]
    mask = KEYS[3]
    values = 2  # numbers per point

    def __init__(self, spec: InputSpec, bands: Sequence[str]):
        super().__init__(spec, bands)
        self.load_state({"normalisation": Normalisation.identity(bands).to_dict()})

    def fit(self, series: Sequence[StampSeries], seed: int) -> None:
        """The median flux error of each band over the first ``FIT_OBJECTS`` training
        objects."""
        errors = (
            (s.band, np.asarray(lightcurve_of(s, FORCED_PSF)["flux_err"]))
            for s in islice(series, FIT_OBJECTS)
        )
        self.load_state(
            {"normalisation": Normalisation.fit_flux_errors(errors, self.bands).to_dict()}
        )

    @property
    def state(self) -> dict:
        return {"normalisation": self.normalisation.to_dict()}

    def load_state(self, state: dict) -> None:
        self.normalisation = Normalisation.from_dict(state["normalisation"], self.bands)
        self._scale = np.array([1.0, *self.normalisation.scale], dtype=np.float32)

    def scaled(self, flux: np.ndarray, err: np.ndarray, bands: np.ndarray) -> np.ndarray:
        """(P, 2) float32 ``asinh(flux / s_b), log(err / s_b)`` of P points of the model's
        band indices ``bands`` (1..n_bands); not finite values are zeros."""
        scale = self._scale[bands]
        with np.errstate(divide="ignore", invalid="ignore"):
            features = np.stack([np.arcsinh(flux / scale), np.log(err / scale)], axis=1)
        features = features.astype(np.float32)
        np.copyto(features, 0.0, where=~np.isfinite(features))
        return features

    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        lc = selection.lightcurve(FORCED_PSF)
        flux = np.asarray(lc["flux"])[selection.index]
        err = np.asarray(lc["flux_err"])[selection.index]
        values = self.scaled(flux, err, selection.bands)
        return {"lc": values, "lc_bands": selection.bands, "lc_times": selection.times}

    def augment(self, arrays: dict[str, np.ndarray], draw: Augmentation) -> dict[str, np.ndarray]:
        return keep_frames(arrays, self.sequence, draw.keep)

    def incomplete(self, arrays: dict[str, np.ndarray]) -> bool:
        """No point with a measured flux (every one was NaN, and is zeros)."""
        return not arrays["lc"].any()

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        return f"{spec.max_frames}-point light curve"

    @classmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        values = torch.zeros(1, n_frames, cls.values)
        return sequence_example(n_frames, values, (*cls.sequence, cls.mask))
