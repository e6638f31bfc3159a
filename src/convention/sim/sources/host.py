"""Host galaxies: a Sersic profile with per-band AB magnitudes."""

from __future__ import annotations

from dataclasses import dataclass

import galsim
import numpy as np

# Sersic indices drawn from a small grid: GalSim caches one Hankel table per index, a
# continuous n costs ~40x more. Weights assumed: mostly disks, some bulge-dominated.
SERSIC_GRID = (1.0, 1.5, 2.5, 4.0)
SERSIC_WEIGHTS = (0.4, 0.25, 0.2, 0.15)


@dataclass(frozen=True)
class HostGalaxy:
    """A galaxy seen in the stamp.

    Attributes:
        mags: AB magnitude per survey band (inf = no light in that band).
        half_light_radius: arcsec.
        sersic_n: Sersic index.
        axis_ratio: minor / major axis.
        position_angle: radians.
        offset: (x, y) of the galaxy centre from the stamp centre, arcsec.
    """

    mags: tuple[float, ...]
    half_light_radius: float
    sersic_n: float
    axis_ratio: float
    position_angle: float
    offset: tuple[float, float]

    def flux(self) -> np.ndarray:
        """Flux per band, nanomaggies."""
        return 10 ** (-0.4 * (np.asarray(self.mags) - 22.5))

    def profile(self) -> galsim.GSObject:
        """Unit-flux GalSim profile, sheared, rotated and shifted into place."""
        gal = galsim.Sersic(n=self.sersic_n, half_light_radius=self.half_light_radius)
        shear = galsim.Shear(q=self.axis_ratio, beta=self.position_angle * galsim.radians)
        return gal.shear(shear).shift(*self.offset)


def draw_host(
    mags: np.ndarray, separation: float, rng: np.random.Generator, compact: bool = False
) -> HostGalaxy:
    """A host galaxy of the given magnitudes whose centre lies ``separation`` arcsec away.

    Size from magnitude: log10(r_e / arcsec) = 0.3 - 0.2 (r - 19) with 0.15 dex scatter,
    about the size-magnitude relation of SDSS galaxies (Shen et al. 2003, MNRAS 343, 978).
    ``compact`` (AGN hosts) halves the size.
    """
    r_mag = float(mags[2]) if np.isfinite(mags[2]) else 21.0
    log_re = 0.3 - 0.2 * (r_mag - 19.0) + 0.15 * rng.standard_normal()
    r_e = float(np.clip(10**log_re * (0.5 if compact else 1.0), 0.2, 8.0))
    n = float(rng.choice(SERSIC_GRID, p=SERSIC_WEIGHTS))
    angle = rng.uniform(0, 2 * np.pi)
    offset = (-separation * np.cos(angle), -separation * np.sin(angle))
    return HostGalaxy(
        mags=tuple(float(m) for m in mags),
        half_light_radius=r_e,
        sersic_n=n,
        axis_ratio=float(rng.uniform(0.3, 1.0)),
        position_angle=float(rng.uniform(0, np.pi)),
        offset=offset,
    )
