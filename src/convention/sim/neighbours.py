"""What a survey's catalogues say of a simulated object's neighbourhood: the catalogue
fields of ``convention.metadata``, as ZTF's alerts carry them (``sgscore1``, ``distpsnr1``,
``distnr``; Masci et al. 2019, PASP 131, 018003).

The nearest catalogue source is the nearest of: the object's own quiescent point source
(a variable star, an AGN's nucleus with its compact host; never a supernova, absent
before it explodes), its host galaxy, and a field source, each only where brighter than
the catalogue's depth. Positions carry the alert's astrometric error. The star/galaxy
score of a star is near 1 and of a galaxy near 0, less sure towards the catalogue's
depth (Tachibana & Miller 2018, PASP 130, 128001, their Fig. 8); an AGN is seen as a
point source in proportion to its nucleus' share of the light.
"""

from __future__ import annotations

import numpy as np

from convention.sim.sources import HostGalaxy

PS1_DEPTH_R = 23.2  # 3pi stack, 5 sigma (Chambers et al. 2016, arXiv:1612.05560)
# Assumed: ZTF's references 1.4 mag deeper than one frame's 20.6 (the real templates of
# benchmarks/ztf_realism.py are 1.66 mag deeper at 5 sigma; a catalogue keeps less).
REFERENCE_DEPTH_R = 22.0
# Assumed surface densities at high Galactic latitude (sources per square arcsec), of
# r < 23.2 for Pan-STARRS1 and r < 22 for a ZTF reference, and the stars among them.
PS1_FIELD_DENSITY = 2.0e4 / 3600.0**2
REFERENCE_FIELD_DENSITY = 6.0e3 / 3600.0**2
FIELD_STAR_FRACTION = 0.4
FIELD_BRIGHTEST_R = 17.0  # field sources' r magnitudes: uniform from this to the depth (assumed)
POSITION_SIGMA = 0.15  # arcsec per axis, an alert's astrometric error (assumed)
SEARCH_RADIUS = 30.0  # arcsec: ZTF's catalogue matches reach no further


def star_score(is_star: bool, r_mag: float, rng: np.random.Generator) -> float:
    """A star/galaxy score: 1 - |N(0, w)| for a star, |N(0, w)| for a galaxy, the width
    ``w`` from 0.05 at r = 19 or brighter to 0.35 at r = 23 (assumed)."""
    width = 0.05 + 0.3 * float(np.clip((r_mag - 19.0) / 4.0, 0.0, 1.0))
    spread = min(abs(width * rng.standard_normal()), 1.0)
    return 1.0 - spread if is_star else spread


def _field_source(
    density: float, depth: float, rng: np.random.Generator
) -> tuple[float, bool, float]:
    """The nearest source of a Poisson field of ``density`` sources per square arcsec
    brighter than ``depth``: (distance arcsec, a star, r mag)."""
    distance = float(np.sqrt(-np.log(1.0 - rng.random()) / (np.pi * density)))
    is_star = bool(rng.random() < FIELD_STAR_FRACTION)
    return distance, is_star, float(rng.uniform(FIELD_BRIGHTEST_R, depth))


def catalogue_fields(
    label: str, point_flux_r: float, host: HostGalaxy | None, rng: np.random.Generator
) -> dict[str, float]:
    """The catalogue fields of one object.

    Args:
        label: its class (``Variable`` and ``AGN`` are point sources at rest).
        point_flux_r: its point source's quiescent r flux, nanomaggies (the reference's;
            zero for a supernova).
        host: its host galaxy (``mags`` in SDSS ugriz, ``offset`` arcsec), or None.
        rng: the object's catalogue stream.

    Returns:
        ``star_score``, ``star_distance``, ``reference_distance`` (arcsec); NaN where no
        source lies within ``SEARCH_RADIUS``.
    """
    error = POSITION_SIGMA * rng.standard_normal(2)
    host_mag = float(host.mags[2]) if host is not None else np.inf
    sources = []  # (position (x, y) arcsec, a star, r mag)
    if label == "AGN" and host is not None and point_flux_r > 0:
        share = point_flux_r / (point_flux_r + 10 ** (-0.4 * (host_mag - 22.5)))
        combined = 22.5 - 2.5 * np.log10(point_flux_r + 10 ** (-0.4 * (host_mag - 22.5)))
        # Point-like from a nucleus of 40% of the light (never) to 90% (always).
        pointlike = rng.random() < np.clip((share - 0.4) / 0.5, 0.0, 1.0)
        sources.append((np.zeros(2), bool(pointlike), combined))
    else:
        # A supernova's model before it explodes is faint but not nothing (1e-17
        # nanomaggies): its point source is never seen, and its host still is.
        if point_flux_r > 0:
            sources.append((np.zeros(2), True, 22.5 - 2.5 * np.log10(point_flux_r)))
        if host is not None:
            sources.append((np.asarray(host.offset, dtype=float), False, host_mag))
    fields = {}
    for names, depth, density in (
        (("star_score", "star_distance"), PS1_DEPTH_R, PS1_FIELD_DENSITY),
        (("reference_distance",), REFERENCE_DEPTH_R, REFERENCE_FIELD_DENSITY),
    ):
        seen = [
            (float(np.hypot(*(position - error))), is_star, mag)
            for position, is_star, mag in sources
            if mag < depth
        ]
        distance, is_star, mag = min([*seen, _field_source(density, depth, rng)])
        if distance > SEARCH_RADIUS:
            fields |= dict.fromkeys(names, np.nan)
            continue
        fields[names[-1]] = distance
        if names[0] == "star_score":
            fields["star_score"] = star_score(is_star, mag, rng)
    return fields
