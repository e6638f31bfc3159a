"""``features``: the practitioners' features of an object, for networks that take them in.

The light-curve features of the boosting baseline (``convention.features``, on the forced
PSF photometry of the frames read less each band's reference stamp) and each band's
reference-stamp (host) features, robustly scaled (``convention.inputs.scaled``); a feature
that cannot be computed (too few points, an empty band) is 0 with its flag set. Keys:
``features`` (2F,) float32: the F normalised values, then the F missing-value flags.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from convention.data.series import StampSeries
from convention.features import (
    feature_names,
    lightcurve_features,
    scene_feature_names,
    scene_features,
)
from convention.inputs.base import Needs, Selection, register_input_kind
from convention.inputs.scaled import ScaledValues
from convention.inputs.spec import InputSpec
from convention.lightcurves import FORCED_PSF, lightcurve_of


@register_input_kind("features")
class Features(ScaledValues):
    """Light-curve and reference-stamp features, robustly scaled."""

    needs = Needs(photometry=(FORCED_PSF,))
    key = "features"
    fixed = (key,)

    def __init__(self, spec: InputSpec, bands: Sequence[str]):
        super().__init__(spec, bands)
        self.names = feature_names(self.bands) + scene_feature_names(self.bands)
        self.reset()

    def raw(self, series: StampSeries, selection: Selection | None = None) -> np.ndarray:
        """(F,) float64 unscaled features of a series (NaN where not computable); with
        its ``selection``, of the frames read, from the selection's photometry and
        reference stamps."""
        if selection is None:
            lc, rows, references = lightcurve_of(series, FORCED_PSF), None, None
        else:
            lc, rows = selection.lightcurve(FORCED_PSF), selection.index
            references = selection.references
        scene = scene_features(series, self.band_ids, references)
        return np.concatenate([lightcurve_features(lc, self.bands, rows), scene])

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        return "light-curve and reference-stamp features"

    @classmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        bands = [f"b{k}" for k in range(n_bands)]
        n = len(feature_names(bands)) + len(scene_feature_names(bands))
        return {"features": torch.zeros(1, 2 * n)}
