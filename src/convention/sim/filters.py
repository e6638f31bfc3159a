"""Filter curves as sncosmo bandpasses, from the curves packages ship (no download).

A band's curve is named in the band registry as ``package:name``: ``speclite`` (SDSS 2010,
LSST 2016) or ``pyphot`` (ZTF's g, r and i; sncosmo's own ZTF bandpasses are downloaded at
run time, and speclite ships none).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import sncosmo
import speclite.filters

from convention.bands import get_band
from convention.errors import ConventionError

# pyphot's ZTF curves are bench measurements of the filters over 300-1100 nm: outside
# their passbands they sit at a floor of a few tenths of a percent of the peak, which a
# redshifted template need not cover. The curve is cut where it last rises above this
# fraction of its peak.
CURVE_FLOOR = 0.01


@cache
def bandpass(band: str) -> sncosmo.Bandpass:
    """The sncosmo Bandpass of a registered band, built from the curve its package ships.

    Only the curve's shape matters to an AB magnitude: the packages' normalisations
    (fractions, percent) are kept as they are.

    Raises:
        ConventionError: the band has no filter curve here.
    """
    spec = get_band(band)
    if spec.filter_curve is None:
        raise ConventionError(f"no filter curve for band {spec.name}")
    package, name = spec.filter_curve.split(":", 1)
    if package == "speclite":
        wavelength, response = _speclite_curve(name)
    elif package == "pyphot":
        wavelength, response = _pyphot_curve(name)
    else:
        raise ConventionError(f"band {spec.name}: unknown filter-curve package {package!r}")
    return sncosmo.Bandpass(wavelength, response, name=spec.name)


def _speclite_curve(name: str) -> tuple[np.ndarray, np.ndarray]:
    curve = speclite.filters.load_filter(name)
    return np.asarray(curve.wavelength), np.asarray(curve.response)


def _pyphot_curve(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(wavelength in Angstrom, transmission) of a pyphot library filter, cut to its band."""
    import pyphot  # here, not above: it loads pandas, a second that only ZTF runs need

    curve = pyphot.get_library()[name]
    # The measurements repeat a few wavelengths (ZTF_g at 564.8 nm): their mean is kept.
    wavelength, at = np.unique(curve.wavelength.to("Angstrom").value, return_inverse=True)
    response = np.bincount(at, weights=np.asarray(curve.transmit, dtype=float))
    response /= np.bincount(at)
    inside = np.flatnonzero(response >= CURVE_FLOOR * response.max())
    band = slice(inside[0], inside[-1] + 1)
    return wavelength[band], response[band]
