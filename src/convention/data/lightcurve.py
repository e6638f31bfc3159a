"""Light curves: one object's photometry as an astropy Table.

Columns ``mjd`` (float64), ``band`` (canonical band name), ``flux``, ``flux_err`` (float64,
one flux unit per table, the frames' unit where the table belongs to a StampSeries) and
``detected`` (bool: a detection, as opposed to a forced or upper-limit measurement). Rows
are sorted by mjd.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table

from convention.bands import get_band, per_distinct


def make_lightcurve(
    mjd: Sequence[float] | np.ndarray,
    band: Sequence[str | int] | np.ndarray,
    flux: Sequence[float] | np.ndarray,
    flux_err: Sequence[float] | np.ndarray,
    detected: Sequence[bool] | np.ndarray | None = None,
    survey: str | None = None,
) -> Table:
    """A light-curve Table sorted by mjd (stably), bands resolved by the band registry.

    Args:
        mjd: (L,) Modified Julian Dates.
        band: (L,) band names in any registry spelling, or band ids.
        flux, flux_err: (L,) flux and its 1-sigma error.
        detected: (L,) detection flags; all True when None.
        survey: resolves bare band letters.

    Raises:
        ConventionError: an unknown band.
    """
    mjd = np.asarray(mjd, dtype=np.float64).reshape(-1)

    def resolve(spelling: str | int) -> str:
        return get_band(spelling if isinstance(spelling, str) else int(spelling), survey).name

    if isinstance(band, np.ndarray):
        names = per_distinct(band.reshape(-1), resolve, str)
    else:  # a list may mix names and ids, which one array cannot hold
        names = np.array([resolve(b) for b in band], dtype=str)
    if detected is None:
        detected = np.ones(len(mjd), dtype=bool)
    order = np.argsort(mjd, kind="stable")
    return Table(
        {
            "mjd": mjd[order],
            "band": names[order],
            "flux": np.asarray(flux, dtype=np.float64).reshape(-1)[order],
            "flux_err": np.asarray(flux_err, dtype=np.float64).reshape(-1)[order],
            "detected": np.asarray(detected, dtype=bool).reshape(-1)[order],
        },
        copy=False,  # each column is already a new array (indexed by ``order``)
    )


@dataclass
class LabelledLightCurve:
    """One object's light curve with what a catalogue says about it.

    Attributes:
        object_id: identifier.
        lightcurve: Table as made by :func:`make_lightcurve`.
        label: class name, or None when unlabelled.
        redshift: NaN when unknown.
        ra, dec: degrees, NaN when unknown.
        meta: the catalogue's other columns for this object.
    """

    object_id: str
    lightcurve: Table
    label: str | None = None
    redshift: float = float("nan")
    ra: float = float("nan")
    dec: float = float("nan")
    meta: dict = field(default_factory=dict)
