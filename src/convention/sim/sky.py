"""Where on a wide survey's sky each class of object is seen (the ZTF and Rubin twins'
positions; SDSS-II's objects keep their catalogue positions on Stripe 82).

Extragalactic objects (supernovae, AGN) are spread evenly over the sphere, outside the
dust of the Galactic plane (|b| > 10 deg: assumed, where Milky Way extinction hides most
of them from a 20-mag survey). Variable stars belong to the disk: their |b| is
exponential with a 15 deg scale (assumed: disk stars of a few hundred parsecs' scale
height seen at one to a few kiloparsecs), longitudes even. Either is kept only within
the survey's range of declination.
"""

from __future__ import annotations

import numpy as np

from convention.metadata import icrs_to_galactic

EXTRAGALACTIC_MIN_LATITUDE = 10.0  # deg, assumed
STELLAR_LATITUDE_SCALE = 15.0  # deg, assumed
MAX_DRAWS = 1000


def _to_icrs(l_deg: float, b_deg: float) -> tuple[float, float]:
    """(ra, dec) degrees of a Galactic position."""
    l_rad, b_rad = np.radians(l_deg), np.radians(b_deg)
    galactic = np.array(
        [np.cos(b_rad) * np.cos(l_rad), np.cos(b_rad) * np.sin(l_rad), np.sin(b_rad)]
    )
    x, y, z = icrs_to_galactic().T @ galactic
    return float(np.degrees(np.arctan2(y, x)) % 360.0), float(np.degrees(np.arcsin(z)))


def sky_position(
    label: str, dec_range: tuple[float, float], rng: np.random.Generator
) -> tuple[float, float]:
    """(ra, dec) in degrees of an object of class ``label``, its declination within
    ``dec_range`` (degrees, inclusive).

    Raises:
        RuntimeError: no position within ``dec_range`` in ``MAX_DRAWS`` draws.
    """
    for _ in range(MAX_DRAWS):
        longitude = rng.uniform(0.0, 360.0)
        if label == "Variable":
            latitude = min(rng.exponential(STELLAR_LATITUDE_SCALE), 90.0)
        else:  # even over the sphere: sin(b) uniform
            latitude = float(np.degrees(np.arcsin(rng.uniform(-1.0, 1.0))))
            if abs(latitude) < EXTRAGALACTIC_MIN_LATITUDE:
                continue
        latitude *= rng.choice((-1.0, 1.0)) if label == "Variable" else 1.0
        ra, dec = _to_icrs(longitude, latitude)
        if dec_range[0] <= dec <= dec_range[1]:
            return ra, dec
    raise RuntimeError(f"no position within dec {dec_range} in {MAX_DRAWS} draws")
