"""``luminosity``: each band's peak absolute magnitude, the peak of its forced PSF
difference flux less the distance modulus of the host's redshift
(``convention.features.absolute_peak_magnitudes``), robustly scaled
(``convention.inputs.scaled``). A band whose peak is not detected, or an object without a
host redshift (a ZTF alert, a Galactic object, a value outside its range), is 0 with its
flag set. Keys: ``luminosity`` (2B,) float32: the B scaled magnitudes, then the B
missing-value flags.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from astropy.table import Table

from convention.data.series import StampSeries
from convention.features import absolute_feature_names, absolute_peak_magnitudes
from convention.inputs.base import Needs, Selection, register_input_kind
from convention.inputs.scaled import ScaledValues
from convention.inputs.spec import InputSpec
from convention.lightcurves import FORCED_PSF, lightcurve_of
from convention.metadata import checked


@register_input_kind("luminosity")
class Luminosity(ScaledValues):
    """Peak absolute magnitudes per band from the forced light curve and the host's
    redshift, robustly scaled, each with a missing flag."""

    needs = Needs(photometry=(FORCED_PSF,))
    key = "luminosity"
    fixed = (key,)

    def __init__(self, spec: InputSpec, bands: Sequence[str]):
        super().__init__(spec, bands)
        self.names = absolute_feature_names(self.bands)
        self.reset()

    def raw(self, series: StampSeries, selection: Selection | None = None) -> np.ndarray:
        """(B,) float64 absolute magnitudes of a series (NaN where not computable); with
        its ``selection``, of the frames read, from the selection's photometry."""
        if selection is None:
            return self.values(lightcurve_of(series, FORCED_PSF), self.bands, series.metadata)
        lc, rows = selection.lightcurve(FORCED_PSF), selection.index
        return self.values(lc, self.bands, series.metadata, rows)

    @staticmethod
    def values(
        lc: Table,
        bands: Sequence[str],
        metadata: Mapping[str, float],
        rows: np.ndarray | None = None,
    ) -> np.ndarray:
        """(B,) float64 ``absolute_peak_magnitudes`` of ``lc`` (its ``rows``) at the host
        redshift of ``metadata`` (NaN where not measured or out of range)."""
        redshift = checked("host_redshift", metadata.get("host_redshift"))
        return absolute_peak_magnitudes(lc, bands, redshift, rows)

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        return "peak absolute magnitudes (forced photometry and host redshift)"

    @classmethod
    def example(cls, spec: InputSpec, n_bands: int, n_frames: int) -> dict[str, torch.Tensor]:
        return {"luminosity": torch.zeros(1, 2 * n_bands)}
