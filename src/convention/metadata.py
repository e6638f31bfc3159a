"""Catalogue metadata of an object: what a survey's catalogues say of its neighbourhood,
its host's redshift and the Milky Way's dust before it, one registry of the fields, their
units and physical ranges; and where it lies in the Galaxy, from the position every
source gives (``galactic_latitude``).

A field is a number per object (``StampSeries.metadata``), taken from the source where it
gives one (a ZTF alert's ``sgscore1``, ``distpsnr1``, ``distnr``; PLAsTiCC's
``hostgal_photoz``, ``hostgal_photoz_err``, ``mwebv``) and simulated for the twins. A
value outside its physical range, not finite, or a survey's null (ZTF writes -999) is not
a measurement: ``checked`` turns it into NaN, a masked field.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np


@dataclass(frozen=True)
class MetadataField:
    """One catalogue field.

    Attributes:
        name: its name in ``StampSeries.metadata`` and the store.
        unit: its unit ("" for a score).
        low, high: its physical range, inclusive.
        description: what it measures, and where a survey gives it.
    """

    name: str
    unit: str
    low: float
    high: float
    description: str


FIELDS = (
    MetadataField(
        "star_score",
        "",
        0.0,
        1.0,
        "star/galaxy score of the nearest Pan-STARRS1 source, 1 a star, 0 a galaxy "
        "(ZTF's sgscore1; Tachibana & Miller 2018, PASP 130, 128001)",
    ),
    MetadataField(
        "star_distance",
        "arcsec",
        0.0,
        30.0,
        "distance to that source (ZTF's distpsnr1; none within 30 arcsec: not measured)",
    ),
    MetadataField(
        "reference_distance",
        "arcsec",
        0.0,
        30.0,
        "distance to the nearest source of the reference image (ZTF's distnr, in pixels there)",
    ),
    MetadataField(
        "host_redshift",
        "",
        0.0,
        4.0,
        "redshift of the host galaxy as a catalogue gives it, spectroscopic where one was "
        "measured, else photometric (PLAsTiCC's hostgal_photoz, 0 for a Galactic object; "
        "the SDSS-II twin's, sim/host_redshift.py)",
    ),
    MetadataField(
        "host_redshift_error",
        "",
        0.0,
        4.0,
        "its 1-sigma error (PLAsTiCC's hostgal_photoz_err)",
    ),
    MetadataField(
        "mw_ebv",
        "mag",
        0.0,
        5.0,
        "Milky Way E(B-V) along the line of sight (the Schlegel et al. 1998 map's: "
        "PLAsTiCC's mwebv, the SDSS-II catalogue's MWEBV)",
    ),
)
NAMES = tuple(f.name for f in FIELDS)


def get_field(name: str) -> MetadataField:
    """A field by name.

    Raises:
        KeyError: not a field of the registry.
    """
    for field in FIELDS:
        if field.name == name:
            return field
    raise KeyError(f"unknown metadata field {name!r}; known: {', '.join(NAMES)}")


def checked(name: str, value: float | None) -> float:
    """The value of a field, NaN when it is none, not finite or outside the field's
    physical range (a survey's null)."""
    field = get_field(name)
    if value is None:
        return float("nan")
    number = float(value)
    return number if np.isfinite(number) and field.low <= number <= field.high else float("nan")


@cache
def icrs_to_galactic() -> np.ndarray:
    """(3, 3) R with R @ v the Galactic unit vector of the ICRS one v (astropy's, made once)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    axes = SkyCoord(ra=[0, 90, 0] * u.deg, dec=[0, 0, 90] * u.deg, frame="icrs").galactic
    return axes.cartesian.xyz.value


def galactic_latitude(ra: float, dec: float) -> float:
    """|b|, the Galactic latitude of an ICRS position (degrees) without its sign; NaN for
    a position that is not one."""
    if not (np.isfinite(ra) and np.isfinite(dec) and -90.0 <= dec <= 90.0):
        return float("nan")
    ra_rad, dec_rad = np.radians(ra), np.radians(dec)
    icrs = np.array(
        [np.cos(dec_rad) * np.cos(ra_rad), np.cos(dec_rad) * np.sin(ra_rad), np.sin(dec_rad)]
    )
    z = float(icrs_to_galactic()[2] @ icrs)
    return float(np.degrees(np.arcsin(abs(np.clip(z, -1.0, 1.0)))))
