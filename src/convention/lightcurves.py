"""Which light curve an object has: decided here, by one declared rule, for every consumer
(the input kinds, the boosting baseline, the exports, the plots, SuperNNova's input).

An object's photometry is either supplied by its source (an alert's detections and
limits, PLAsTiCC's photometry, a stamp folder's light-curve table: ``StampSeries.lightcurve``)
or measured by forced photometry on its stamps against each band's reference stamp
(``convention.photometry``: difference fluxes, a static host removed; the references are
``convention.data.reference.references_of``: the source's templates, else the median of
the band's frames). A :class:`PhotometryRule` says which, or both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from astropy.table import Table, vstack

from convention.data.series import references_of
from convention.errors import ConventionError
from convention.photometry import METHODS, forced_photometry

if TYPE_CHECKING:
    from convention.data.reference import Reference
    from convention.data.series import StampSeries

SOURCES = ("forced", "supplied", "supplied-else-forced", "both")


@dataclass(frozen=True)
class PhotometryRule:
    """Where an object's light curve comes from.

    Attributes:
        source: ``forced`` (forced photometry on the stamps less each band's reference
            stamp), ``supplied`` (the source's own photometry; an object without it is
            refused), ``supplied-else-forced`` (the source's where it has a non-empty one),
            or ``both`` (the two stacked, each row's ``origin`` saying which).
        method: how forced photometry measures: ``psf`` (PSF-weighted) or ``aperture``
            (corrected for the PSF's light outside the aperture).
        aperture_arcsec: the aperture's radius for ``aperture``.
    """

    source: str = "forced"
    method: str = "psf"
    aperture_arcsec: float = 3.0

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConventionError(
                f"photometry source must be one of {SOURCES}, got {self.source!r}"
            )
        if self.method not in METHODS:
            raise ConventionError(
                f"photometry method must be one of {METHODS}, got {self.method!r}"
            )

    @property
    def forced(self) -> bool:
        """Whether it measures the stamps (needs their reference stamps)."""
        return self.source != "supplied"

    @property
    def supplied(self) -> bool:
        """Whether it reads the source's own photometry."""
        return self.source != "forced"


FORCED_PSF = PhotometryRule()
SUPPLIED_ELSE_FORCED = PhotometryRule("supplied-else-forced")


def lightcurve_of(
    series: StampSeries,
    rule: PhotometryRule = FORCED_PSF,
    references: Mapping[int, Reference] | None = None,
) -> Table:
    """The object's light curve under ``rule``: Table of ``mjd, band, flux, flux_err,
    detected`` in the frames' flux unit, sorted by mjd (``both`` adds ``origin``). Forced
    rows are one per frame, in frame order.

    Args:
        series: the object.
        rule: where its photometry comes from.
        references: each band's reference by band id, already made
            (``references_of(series)``, else made here).

    Raises:
        ConventionError: ``supplied`` for an object without its own light curve.
    """
    own = series.lightcurve
    has_own = own is not None and len(own) > 0
    if rule.source == "supplied" and own is None:
        raise ConventionError("object has no light curve of its own", obj=series.object_id)
    if rule.source == "supplied" or (rule.source == "supplied-else-forced" and has_own):
        return own
    references = references_of(series) if references is None else references
    forced = forced_photometry(series, rule.method, references, rule.aperture_arcsec)
    if rule.source != "both":
        return forced
    if not has_own:
        forced["origin"] = "forced"
        return forced
    supplied = own.copy()
    supplied["origin"] = "supplied"
    forced["origin"] = "forced"
    both = vstack([supplied, forced])
    return both[np.argsort(np.asarray(both["mjd"]), kind="stable")]
