"""Filter curves as sncosmo bandpasses, from the curves speclite ships (no download)."""

from __future__ import annotations

from functools import cache

import sncosmo
import speclite.filters

from convention.bands import get_band
from convention.errors import ConventionError


@cache
def bandpass(band: str) -> sncosmo.Bandpass:
    """The sncosmo Bandpass of a registered band, built from its speclite curve.

    Raises:
        ConventionError: the band has no filter curve here.
    """
    spec = get_band(band)
    if spec.speclite_name is None:
        raise ConventionError(f"no filter curve for band {spec.name}")
    curve = speclite.filters.load_filter(spec.speclite_name)
    return sncosmo.Bandpass(curve.wavelength, curve.response, name=spec.name)
