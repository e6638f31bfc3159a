"""Where a magnitude-limited search finds its supernovae.

A search that keeps every supernova peaking brighter than its limit sees each one out to
the redshift ``z_lim`` where that supernova (its luminosity, dust and spectrum) fades to the
limit. Its redshift then follows the rate-weighted comoving volume within ``z_lim``,

    p(z) dz  proportional to  (1 + z)^a dV_c/dz / (1 + z) dz,  0 < z < z_lim,

a volumetric rate evolving as (1 + z)^a, less time dilation; and a supernova of the class
is found in proportion to that volume, W(z_lim), the Malmquist bias that makes a
magnitude-limited sample brighter than the volume it is drawn from. The weight is taken
relative to the volume of a bright member of the class (``reference_redshift``) and
capped at 1 above it, so that drawing a luminosity function's far bright tail does not
dominate the sample. Distances are Planck18's, as the sources' (``sources.sed``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

SUPERNOVA_CLASSES = ("SNIa", "SNOther")
# The redshift grid of the volume integrals; a supernova seen beyond its end is drawn
# within it.
MAX_REDSHIFT = 1.0
_GRID = np.linspace(1e-4, MAX_REDSHIFT, 4000)


@cache
def _distances() -> tuple[np.ndarray, np.ndarray]:
    """(luminosity, angular-diameter) distances in Mpc on the grid."""
    # Imported here: the survey definitions that hold a population are read by the alert
    # readers, which should not import sncosmo.
    from convention.sim.sources.sed import COSMOLOGY

    return (
        COSMOLOGY.luminosity_distance(_GRID).value,
        COSMOLOGY.angular_diameter_distance(_GRID).value,
    )


@cache
def _volume(rate_index: float) -> np.ndarray:
    """Cumulative rate-weighted comoving volume W(z) on the grid (arbitrary units)."""
    from convention.sim.sources.sed import COSMOLOGY

    dv = COSMOLOGY.differential_comoving_volume(_GRID).value * (1.0 + _GRID) ** (rate_index - 1.0)
    steps = 0.5 * (dv[1:] + dv[:-1]) * np.diff(_GRID)
    return np.concatenate([[0.0], np.cumsum(steps)])


def limit_redshift(z: float, peak_mag: float, limit_mag: float) -> float:
    """The redshift at which a source peaking at ``peak_mag`` at redshift ``z`` fades to
    ``limit_mag``, by the luminosity distance alone (its K-correction between the two is
    left out: the simulator checks the source's own peak at the redshift drawn)."""
    luminosity, _ = _distances()
    target = float(np.interp(z, _GRID, luminosity)) * 10 ** ((limit_mag - peak_mag) / 5.0)
    return float(np.interp(target, luminosity, _GRID))


def distance_ratios(z_from: float, z_to: float) -> tuple[float, float]:
    """How an object at ``z_from`` looks at ``z_to``: (magnitudes added, angular sizes
    multiplied by), from the luminosity and angular-diameter distances."""
    luminosity, angular = _distances()
    d_l = np.interp([z_from, z_to], _GRID, luminosity)
    d_a = np.interp([z_from, z_to], _GRID, angular)
    return float(5.0 * np.log10(d_l[1] / d_l[0])), float(d_a[0] / d_a[1])


@dataclass(frozen=True)
class MagnitudeLimited:
    """A supernova population as a magnitude-limited search finds it.

    Attributes:
        rate_index: per class of ``SUPERNOVA_CLASSES``, the index a of its volumetric rate's
            evolution, (1 + z)^a.
        reference_redshift: per class, the redshift out to which a bright member of the
            class is seen at the search limit; one seen further is weighted as one seen
            there.
    """

    rate_index: tuple[float, float]
    reference_redshift: tuple[float, float]

    def _of(self, label: str) -> tuple[float, float]:
        k = SUPERNOVA_CLASSES.index(label)
        return self.rate_index[k], self.reference_redshift[k]

    def acceptance(self, label: str, z_limit: float) -> float:
        """The probability of keeping a drawn supernova seen out to ``z_limit``: its
        volume over the class's reference volume, at most 1."""
        rate_index, reference = self._of(label)
        volume = _volume(rate_index)
        seen = np.interp([z_limit, reference], _GRID, volume)
        return float(min(1.0, seen[0] / seen[1]))

    def draw_redshift(self, label: str, z_limit: float, rng: np.random.Generator) -> float:
        """A redshift from the class's rate-weighted comoving volume within ``z_limit``."""
        rate_index, _ = self._of(label)
        volume = _volume(rate_index)
        target = rng.random() * float(np.interp(z_limit, _GRID, volume))
        return float(np.interp(target, volume, _GRID))
