"""``features``: the practitioners' features of an object, for networks that take them in.

The light-curve features of the boosting baseline (``convention.features``, on the forced
PSF photometry of the frames read less each band's reference stamp) and each band's
reference-stamp (host) features, ``asinh((x - median_f) / scale_f)`` per feature with the
median and robust scale (1.4826 MAD, else half the 10-90% range) of the training split; a
feature that cannot be computed (too few points, an empty band) is 0 with its flag set. Keys:
``features`` (2F,) float32: the F normalised values, then the F missing-value flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice

import numpy as np
import torch

from convention.bands import get_band
from convention.data.series import StampSeries
from convention.errors import ConventionError
from convention.features import (
    feature_names,
    lightcurve_features,
    scene_feature_names,
    scene_features,
)
from convention.inputs.base import InputKind, Needs, Selection, register_input_kind
from convention.inputs.normalisation import check_statistics
from convention.inputs.spec import InputSpec
from convention.lightcurves import FORCED_PSF, lightcurve_of

FIT_OBJECTS = 2000  # training objects whose features set the scales


@register_input_kind("features")
class Features(InputKind):
    """Light-curve and reference-stamp features, robustly scaled."""

    needs = Needs(photometry=(FORCED_PSF,))
    fixed = ("features",)

    def __init__(self, spec: InputSpec, bands: Sequence[str]):
        super().__init__(spec, bands)
        self.names = feature_names(self.bands) + scene_feature_names(self.bands)
        n = len(self.names)
        self.load_state({"names": self.names, "median": [0.0] * n, "scale": [1.0] * n})

    def raw(self, series: StampSeries, selection: Selection | None = None) -> np.ndarray:
        """(F,) float64 unscaled features of a series (NaN where not computable); with
        its ``selection``, of the frames read, from the selection's photometry and
        reference stamps."""
        band_ids = [get_band(b).id for b in self.bands]
        if selection is None:
            lc, references = lightcurve_of(series, FORCED_PSF), None
        else:
            lc = selection.lightcurve(FORCED_PSF)[selection.index]
            references = selection.references
        scene = scene_features(series, band_ids, references)
        return np.concatenate([lightcurve_features(lc, self.bands), scene])

    def fit(self, series: Sequence[StampSeries], seed: int) -> None:
        """Per-feature median and robust scale over the first ``FIT_OBJECTS`` objects."""
        values = np.array([self.raw(s) for s in islice(series, FIT_OBJECTS)])
        median, scale = [], []
        for column in values.T:
            finite = column[np.isfinite(column)]
            if not finite.size:
                median.append(0.0)
                scale.append(1.0)
                continue
            centre = float(np.median(finite))
            spread = 1.4826 * float(np.median(np.abs(finite - centre)))
            if not spread > 0:
                low, high = np.percentile(finite, [10, 90])
                spread = float(high - low) / 2
            median.append(centre)
            scale.append(spread if spread > 0 else 1.0)
        self.load_state({"names": self.names, "median": median, "scale": scale})

    @property
    def state(self) -> dict:
        return {"names": self.names, "median": self._median.tolist(), "scale": self._scale.tolist()}

    def load_state(self, state: dict) -> None:
        if list(state["names"]) != self.names:
            raise ConventionError("the features were fitted for other bands or another set")
        median = np.asarray(state["median"], dtype=np.float64)
        scale = np.asarray(state["scale"], dtype=np.float64)
        if median.shape != (len(self.names),) or scale.shape != (len(self.names),):
            raise ValueError(f"{len(self.names)} features, a state of other lengths")
        check_statistics(median, scale)
        self._median, self._scale = median, scale

    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        values = self.raw(selection.series, selection)
        missing = ~np.isfinite(values)
        with np.errstate(invalid="ignore"):
            scaled = np.arcsinh((values - self._median) / self._scale)
        scaled[missing] = 0.0
        return {"features": np.concatenate([scaled, missing]).astype(np.float32)}

    def incomplete(self, arrays: dict[str, np.ndarray]) -> bool:
        """A feature that could not be computed."""
        return bool(arrays["features"][len(self.names) :].any())

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        return "light-curve and reference-stamp features"

    @classmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        bands = [f"b{k}" for k in range(n_bands)]
        n = len(feature_names(bands)) + len(scene_feature_names(bands))
        return {"features": torch.zeros(1, 2 * n)}
