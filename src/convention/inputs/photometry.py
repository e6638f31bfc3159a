"""``photometry``: the source's own light curve, point by point: an alert's detections and
its non-detections as limits (the ``prv_candidates`` of every packet of the object's
history), a PLAsTiCC light curve; forced photometry of the frames read where the source
gives none (``lightcurves.SUPPLIED_ELSE_FORCED``).

Unlike ``lightcurve`` (one point per frame read), its points are the source's: an alert's
thirty days of visits before its first frame included. Each point is
``(asinh(flux / s_b), log(flux_err / s_b), detected)`` (a non-detection has flux 0 and
error its 5-sigma limit / 5), ``s_b`` the band's median flux error on the training split.
The points taken by the last frame read count, at most ``max_frames`` of them, the most
recent; points of bands the model does not read are left out. Keys: ``phot`` (P, 3)
float32, ``phot_bands`` (P,) int64, ``phot_times`` (P,) float32 days since the first
point; ``phot_mask`` (P,) after collation.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice

import numpy as np
from astropy.table import Table

from convention.bands import get_band, per_distinct
from convention.data.series import StampSeries
from convention.inputs.base import (
    Augmentation,
    Needs,
    Selection,
    register_input_kind,
)
from convention.inputs.lightcurve import FIT_OBJECTS, LightCurve
from convention.inputs.normalisation import Normalisation
from convention.inputs.spec import InputSpec
from convention.lightcurves import FORCED_PSF, SUPPLIED_ELSE_FORCED, lightcurve_of

KEYS = ("phot", "phot_bands", "phot_times", "phot_mask")


@register_input_kind("photometry")
class Photometry(LightCurve):
    """The source's own light curve with its non-detections (an alert packet's); its
    normalisation is the light curve's, fitted on these points."""

    needs = Needs(photometry=(SUPPLIED_ELSE_FORCED, FORCED_PSF))
    sequence = KEYS[:3]
    mask = KEYS[3]
    values = 3

    def __init__(self, spec: InputSpec, bands: Sequence[str]):
        super().__init__(spec, bands)
        self._index = {get_band(name).name: k + 1 for k, name in enumerate(self.bands)}

    def fit(self, series: Sequence[StampSeries], seed: int) -> None:
        """The median flux error of each band over the first ``FIT_OBJECTS`` training
        objects' points."""
        errors = []
        for s in islice(series, FIT_OBJECTS):
            lc = lightcurve_of(s, SUPPLIED_ELSE_FORCED)
            errors.append(
                (
                    per_distinct(
                        np.asarray(lc["band"], str), lambda name: get_band(name).id, np.int64
                    ),
                    lc["flux_err"],
                )
            )
        self.load_state(
            {"normalisation": Normalisation.fit_flux_errors(errors, self.bands).to_dict()}
        )

    def points(self, selection: Selection) -> tuple[Table, np.ndarray]:
        """The points read (a light-curve Table) and their model band index (1..n_bands)."""
        last = float(selection.series.mjd[selection.index[-1]])
        lc = selection.lightcurve(SUPPLIED_ELSE_FORCED)
        bands = per_distinct(
            np.asarray(lc["band"], str), lambda name: self._index.get(name, 0), np.int64
        )
        keep = np.flatnonzero((np.asarray(lc["mjd"]) <= last) & (bands > 0))
        if not len(keep):
            # The source's points are all later than the last frame read, or of other bands.
            return selection.lightcurve(FORCED_PSF)[selection.index], selection.bands
        keep = keep[-self.spec.max_frames :]
        return lc[keep], bands[keep]

    def encode(self, selection: Selection) -> dict[str, np.ndarray]:
        lc, bands = self.points(selection)
        scaled = self.scaled(np.asarray(lc["flux"]), np.asarray(lc["flux_err"]), bands)
        detected = np.asarray(lc["detected"], dtype=np.float32)[:, None]
        mjd = np.asarray(lc["mjd"])
        return {
            "phot": np.concatenate([scaled, detected], axis=1),
            "phot_bands": bands,
            "phot_times": (mjd - mjd[0]).astype(np.float32),
        }

    def augment(self, arrays: dict[str, np.ndarray], draw: Augmentation) -> dict[str, np.ndarray]:
        """Unchanged: the draw's frames are not this kind's points (training sees the
        source's photometry cut with the frames by ``--truncate-fraction`` instead)."""
        return arrays

    def incomplete(self, arrays: dict[str, np.ndarray]) -> bool:
        """No detection among the points (limits alone, or forced points below 5 sigma)."""
        return not arrays["phot"][:, 2].any()

    @classmethod
    def describe(cls, spec: InputSpec) -> str:
        return f"the source's photometry, {spec.max_frames} points at most"
